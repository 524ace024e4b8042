-- +goose Up
-- A key may keep what was sent and what came back (off by default), for 1
-- to 30 days. Bodies live in a table of their own, not in the request log:
-- the log's rows stay narrow, and bodies are deleted on their own schedule
-- (expires_at), when the key's owner deletes them, and when the key is
-- revoked.
ALTER TABLE api_keys ADD COLUMN keep_bodies BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE api_keys ADD COLUMN keep_bodies_days INTEGER NOT NULL DEFAULT 7;

-- Each body is at most 64 KiB of the original (truncated and marked so),
-- with anything shaped like a key secret redacted, then compressed
-- (DEFLATE). No headers are kept. chunks is a stream's chunk count (0 for
-- a plain answer); its response is the stream reassembled.
CREATE TABLE request_bodies (
    request_id          TEXT PRIMARY KEY,
    account_id          TEXT NOT NULL,
    key_id              TEXT NOT NULL,
    created_at          TIMESTAMP NOT NULL,
    expires_at          TIMESTAMP NOT NULL,
    request_body        BYTEA NOT NULL,
    request_truncated   BOOLEAN NOT NULL DEFAULT FALSE,
    response_body       BYTEA NOT NULL,
    response_truncated  BOOLEAN NOT NULL DEFAULT FALSE,
    chunks              INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX request_bodies_expiry ON request_bodies (expires_at);
CREATE INDEX request_bodies_key ON request_bodies (key_id, request_id);

-- +goose Down
DROP TABLE request_bodies;
ALTER TABLE api_keys DROP COLUMN keep_bodies_days;
ALTER TABLE api_keys DROP COLUMN keep_bodies;
