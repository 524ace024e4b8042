-- +goose Up
-- A request's billing timeline (hold placed, captured, released, expired)
-- is read from its hold, its ledger entry and its outcome detail, which
-- hold every fact of it; the events table repeated them on every call.
DROP TABLE billing_events;

-- The reaper looks only at open holds: a partial index holds just those,
-- so ending a hold removes one entry instead of moving it.
DROP INDEX holds_open;
CREATE INDEX holds_open ON holds (expires_at) WHERE status = 'open';

-- +goose Down
DROP INDEX holds_open;
CREATE INDEX holds_open ON holds (status, expires_at);

CREATE TABLE billing_events (
    id              TEXT PRIMARY KEY,
    request_id      TEXT NOT NULL,
    account_id      TEXT NOT NULL,
    event           TEXT NOT NULL,
    amount_micros   BIGINT NOT NULL DEFAULT 0,
    ledger_entry_id TEXT,
    detail          TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMP NOT NULL
);
CREATE INDEX billing_events_request ON billing_events (request_id, id);
