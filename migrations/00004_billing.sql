-- +goose Up
-- A payment is one recharge through a payment provider's checkout. It
-- moves from pending to paid exactly once (a guarded update), and only
-- that move writes the recharge into the ledger, in the same transaction.
CREATE TABLE payments (
    id              TEXT PRIMARY KEY, -- pay_<ULID>; also the checkout's client_reference_id
    account_id      TEXT NOT NULL REFERENCES accounts (id),
    provider        TEXT NOT NULL, -- stripe | test
    session_id      TEXT UNIQUE, -- the provider's checkout session id, once it exists
    checkout_url    TEXT NOT NULL DEFAULT '',
    amount_micros   BIGINT NOT NULL CHECK (amount_micros > 0),
    currency        TEXT NOT NULL DEFAULT 'usd',
    status          TEXT NOT NULL, -- pending | paid | failed | expired
    detail          TEXT NOT NULL DEFAULT '',
    ledger_entry_id TEXT,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    paid_at         TIMESTAMP
);
CREATE INDEX payments_account ON payments (account_id, id);

-- Every provider event is recorded once, by its id: a redelivery finds its
-- row and changes nothing.
CREATE TABLE payment_events (
    event_id    TEXT PRIMARY KEY,
    provider    TEXT NOT NULL,
    type        TEXT NOT NULL,
    session_id  TEXT NOT NULL DEFAULT '',
    payment_id  TEXT,
    outcome     TEXT NOT NULL DEFAULT '',
    received_at TIMESTAMP NOT NULL
);
CREATE INDEX payment_events_payment ON payment_events (payment_id, received_at);

-- The test provider's own state: what a real provider would keep on its
-- side, so a pending payment can be re-checked against it.
CREATE TABLE test_checkout_sessions (
    id             TEXT PRIMARY KEY, -- cs_test_...
    payment_id     TEXT NOT NULL UNIQUE,
    account_id     TEXT NOT NULL,
    amount_cents   BIGINT NOT NULL,
    currency       TEXT NOT NULL,
    status         TEXT NOT NULL, -- open | complete | expired
    payment_status TEXT NOT NULL, -- unpaid | paid
    created_at     TIMESTAMP NOT NULL,
    expires_at     TIMESTAMP NOT NULL
);

-- The available balance below which every console page shows a banner;
-- NULL means no alert.
ALTER TABLE accounts ADD COLUMN low_balance_micros BIGINT;

-- +goose Down
ALTER TABLE accounts DROP COLUMN low_balance_micros;
DROP TABLE test_checkout_sessions;
DROP TABLE payment_events;
DROP TABLE payments;
