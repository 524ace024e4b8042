-- +goose Up
-- The model catalogue: what keys can be scoped to and what calls cost.
-- Prices are micro-dollars per million tokens; a task has a fixed price.
CREATE TABLE models (
    id                     TEXT PRIMARY KEY,
    kind                   TEXT NOT NULL, -- chat | embeddings | task
    input_micros_per_mtok  BIGINT NOT NULL DEFAULT 0,
    output_micros_per_mtok BIGINT NOT NULL DEFAULT 0,
    task_price_micros      BIGINT NOT NULL DEFAULT 0,
    max_output_tokens      INTEGER NOT NULL DEFAULT 0,
    sort                   INTEGER NOT NULL DEFAULT 0
);
INSERT INTO models (id, kind, input_micros_per_mtok, output_micros_per_mtok, task_price_micros, max_output_tokens, sort) VALUES
    ('tt-chat-small', 'chat', 500000, 1500000, 0, 16384, 10),
    ('tt-chat-large', 'chat', 3000000, 15000000, 0, 16384, 20),
    ('tt-embed-1', 'embeddings', 100000, 0, 0, 0, 30),
    ('tt-video-1', 'task', 0, 0, 500000, 0, 40);

-- An API key is stored only as the SHA-256 of its secret, plus a display
-- prefix and last four characters; the secret itself is shown once.
CREATE TABLE api_keys (
    id                   TEXT PRIMARY KEY,
    account_id           TEXT NOT NULL REFERENCES accounts (id),
    name                 TEXT NOT NULL,
    secret_hash          TEXT NOT NULL UNIQUE,
    prefix               TEXT NOT NULL,
    last4                TEXT NOT NULL,
    status               TEXT NOT NULL DEFAULT 'active', -- active | disabled | revoked
    models               TEXT NOT NULL DEFAULT '', -- comma-separated model ids; '' = all models
    allowed_ips          TEXT NOT NULL DEFAULT '', -- newline-separated CIDRs; '' = any source
    monthly_limit_micros BIGINT, -- NULL = no limit
    rpm                  INTEGER NOT NULL DEFAULT 60,
    expires_at           TIMESTAMP,
    created_at           TIMESTAMP NOT NULL,
    last_used_at         TIMESTAMP,
    -- The console form's one-time token: submitting the same form twice
    -- (a reload) cannot create a second key.
    create_nonce         TEXT UNIQUE
);
CREATE INDEX api_keys_account ON api_keys (account_id, id);

-- A key's spend and open holds per calendar month (UTC), for its monthly
-- limit. The gateway writes it; the console reads it.
CREATE TABLE key_month_usage (
    key_id       TEXT NOT NULL,
    month        TEXT NOT NULL, -- YYYY-MM
    spent_micros BIGINT NOT NULL DEFAULT 0,
    held_micros  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, month)
);

-- Every change to a key: what changed, from what to what, by whom, when.
CREATE TABLE key_events (
    id         TEXT PRIMARY KEY,
    key_id     TEXT NOT NULL REFERENCES api_keys (id),
    account_id TEXT NOT NULL,
    actor      TEXT NOT NULL, -- a user's email, or 'admin cli'
    field      TEXT NOT NULL,
    old_value  TEXT NOT NULL DEFAULT '',
    new_value  TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX key_events_key ON key_events (key_id, id);

-- +goose Down
DROP TABLE key_events;
DROP TABLE key_month_usage;
DROP TABLE api_keys;
DROP TABLE models;
