-- +goose Up
-- The ledger is append-only: every change to a wallet's balance is one row,
-- and balance_after_micros is the balance right after it.
CREATE TABLE ledger_entries (
    id                   TEXT PRIMARY KEY,
    account_id           TEXT NOT NULL REFERENCES accounts (id),
    kind                 TEXT NOT NULL, -- recharge | charge | adjustment | refund
    amount_micros        BIGINT NOT NULL, -- signed: credits are positive
    balance_after_micros BIGINT NOT NULL,
    request_id           TEXT,
    payment_id           TEXT,
    memo                 TEXT NOT NULL DEFAULT '',
    created_at           TIMESTAMP NOT NULL
);
CREATE INDEX ledger_entries_account ON ledger_entries (account_id, id);
CREATE INDEX ledger_entries_request ON ledger_entries (request_id);

-- A hold reserves a call's maximum cost while it runs and ends exactly
-- once: captured, released or expired.
CREATE TABLE holds (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts (id),
    key_id          TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    month           TEXT NOT NULL, -- YYYY-MM (UTC) of the key usage it counts against
    amount_micros   BIGINT NOT NULL CHECK (amount_micros >= 0),
    status          TEXT NOT NULL, -- open | captured | released | expired
    captured_micros BIGINT NOT NULL DEFAULT 0,
    created_at      TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP NOT NULL,
    ended_at        TIMESTAMP
);
CREATE INDEX holds_open ON holds (status, expires_at);
CREATE INDEX holds_request ON holds (request_id);

-- One row per request the gateway answered, rejections and 404s included.
CREATE TABLE requests (
    id                  TEXT PRIMARY KEY,
    account_id          TEXT, -- NULL when the caller was never identified
    key_id              TEXT,
    method              TEXT NOT NULL,
    path                TEXT NOT NULL,
    model               TEXT NOT NULL DEFAULT '',
    status              INTEGER NOT NULL,
    error_type          TEXT NOT NULL DEFAULT '',
    error_message       TEXT NOT NULL DEFAULT '',
    error_body          TEXT NOT NULL DEFAULT '',
    client_ip           TEXT NOT NULL DEFAULT '',
    stream              BOOLEAN NOT NULL DEFAULT FALSE,
    latency_ms          INTEGER NOT NULL DEFAULT 0,
    prompt_tokens       INTEGER NOT NULL DEFAULT 0,
    completion_tokens   INTEGER NOT NULL DEFAULT 0,
    hold_micros         BIGINT NOT NULL DEFAULT 0,
    charged_micros      BIGINT NOT NULL DEFAULT 0,
    billing_outcome     TEXT NOT NULL,
    outcome_detail      TEXT NOT NULL DEFAULT '',
    ratelimit_limit     INTEGER,
    ratelimit_remaining INTEGER,
    ratelimit_reset     BIGINT,
    retry_after         INTEGER,
    created_at          TIMESTAMP NOT NULL,
    completed_at        TIMESTAMP
);
CREATE INDEX requests_account ON requests (account_id, id);

-- The billing timeline of a request: hold placed, captured, released, expired.
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

-- +goose Down
DROP TABLE billing_events;
DROP TABLE requests;
DROP TABLE holds;
DROP TABLE ledger_entries;
