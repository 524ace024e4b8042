-- +goose Up
-- A saved card and the auto top-up settings, one row per account that has
-- a customer at the payment provider. card_set_at is the creation time of
-- the card setup last applied (or of the card's removal): an older setup's
-- event, replayed or late, never brings back a card replaced or removed.
CREATE TABLE billing_profiles (
    account_id             TEXT PRIMARY KEY REFERENCES accounts (id),
    provider               TEXT NOT NULL DEFAULT '',
    customer_id            TEXT UNIQUE,
    card_id                TEXT,
    card_brand             TEXT NOT NULL DEFAULT '',
    card_last4             TEXT NOT NULL DEFAULT '',
    card_exp_month         INTEGER NOT NULL DEFAULT 0,
    card_exp_year          INTEGER NOT NULL DEFAULT 0,
    card_set_at            TIMESTAMP,
    topup_enabled          BOOLEAN NOT NULL DEFAULT FALSE,
    topup_threshold_micros BIGINT NOT NULL DEFAULT 0,
    topup_amount_micros    BIGINT NOT NULL DEFAULT 0,
    topup_cap_micros       BIGINT NOT NULL DEFAULT 0,
    topup_failures         INTEGER NOT NULL DEFAULT 0, -- consecutive
    topup_failed_at        TIMESTAMP,
    topup_paused_at        TIMESTAMP,
    updated_at             TIMESTAMP NOT NULL
);

-- The wallet row carries what its hot updates compare against, so that a
-- hold crossing a threshold flips a state in the same UPDATE, with no
-- statement of its own. NULL thresholds: off. topup_state is armed (a
-- crossing starts a top-up), due (crossed: a worker starts one), charging
-- (one is under way) or spent (this crossing had its top-up; a credit that
-- lifts the balance above the threshold arms it again). low_state is armed,
-- due (the warning is to be sent) or sent.
ALTER TABLE wallets ADD COLUMN topup_threshold_micros BIGINT;
ALTER TABLE wallets ADD COLUMN topup_state TEXT NOT NULL DEFAULT 'armed';
ALTER TABLE wallets ADD COLUMN topup_not_before TIMESTAMP;
ALTER TABLE wallets ADD COLUMN low_balance_micros BIGINT;
ALTER TABLE wallets ADD COLUMN low_state TEXT NOT NULL DEFAULT 'armed';
UPDATE wallets SET low_balance_micros = (SELECT a.low_balance_micros FROM accounts a WHERE a.id = wallets.account_id);
-- A wallet already below its warning was warned by the banner: no mail
-- for a crossing that happened before this version.
UPDATE wallets SET low_state = 'sent' WHERE balance_micros - held_micros - debt_micros < low_balance_micros;
CREATE INDEX wallets_topup_due ON wallets (account_id) WHERE topup_state = 'due';
CREATE INDEX wallets_low_due ON wallets (account_id) WHERE low_state = 'due';

-- Payments are recharges through a checkout or auto top-ups charged to the
-- saved card (intent_id: the provider's PaymentIntent). Every paid payment
-- has a receipt number, counted per account and never reused.
ALTER TABLE payments ADD COLUMN kind TEXT NOT NULL DEFAULT 'recharge';
ALTER TABLE payments ADD COLUMN intent_id TEXT;
ALTER TABLE payments ADD COLUMN customer_id TEXT;
ALTER TABLE payments ADD COLUMN card_id TEXT;
ALTER TABLE payments ADD COLUMN card_brand TEXT NOT NULL DEFAULT '';
ALTER TABLE payments ADD COLUMN card_last4 TEXT NOT NULL DEFAULT '';
ALTER TABLE payments ADD COLUMN failure_code TEXT NOT NULL DEFAULT '';
ALTER TABLE payments ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE payments ADD COLUMN lease_until TIMESTAMP;
ALTER TABLE payments ADD COLUMN receipt_number BIGINT;
ALTER TABLE payments ADD COLUMN receipt_mailed_at TIMESTAMP;
CREATE UNIQUE INDEX payments_intent ON payments (intent_id);
CREATE UNIQUE INDEX payments_receipt ON payments (account_id, receipt_number);
CREATE INDEX payments_topups_open ON payments (created_at) WHERE kind = 'auto_topup' AND status = 'pending';
CREATE INDEX payments_topups_month ON payments (account_id, created_at) WHERE kind = 'auto_topup';
CREATE INDEX payments_receipts_unmailed ON payments (paid_at) WHERE receipt_number IS NOT NULL AND receipt_mailed_at IS NULL;

-- Payments paid before this version get their receipt numbers in the order
-- they were paid; their receipts are not mailed now.
ALTER TABLE accounts ADD COLUMN next_receipt BIGINT NOT NULL DEFAULT 1;
UPDATE payments SET receipt_number = (SELECT COUNT(*) FROM payments p2 WHERE p2.account_id = payments.account_id
    AND p2.status = 'paid' AND (p2.paid_at < payments.paid_at OR (p2.paid_at = payments.paid_at AND p2.id <= payments.id))),
    receipt_mailed_at = paid_at
    WHERE status = 'paid';
UPDATE accounts SET next_receipt = 1 + (SELECT COUNT(*) FROM payments p WHERE p.account_id = accounts.id AND p.status = 'paid');

-- How far a key's month has been reported against its limit: 0, 80, 100.
ALTER TABLE key_month_usage ADD COLUMN alert_level INTEGER NOT NULL DEFAULT 0;
CREATE INDEX key_month_usage_alerts ON key_month_usage (month) WHERE alert_level < 100;

-- What the console tells an account, on Overview until dismissed, and by
-- mail once (mailed_at). dedupe makes each alert once: per crossing, per
-- payment, per key and month.
CREATE TABLE alerts (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    kind         TEXT NOT NULL,
    dedupe       TEXT NOT NULL,
    title        TEXT NOT NULL,
    body         TEXT NOT NULL,
    link         TEXT NOT NULL DEFAULT '',
    key_id       TEXT,
    created_at   TIMESTAMP NOT NULL,
    mailed_at    TIMESTAMP,
    dismissed_at TIMESTAMP,
    UNIQUE (account_id, dedupe)
);
CREATE INDEX alerts_open ON alerts (account_id, id) WHERE dismissed_at IS NULL;
CREATE INDEX alerts_unmailed ON alerts (created_at) WHERE mailed_at IS NULL;

-- The test payment provider's side of saved cards: setup sessions, the
-- cards they saved (behaviour: succeed, decline or authenticate) and the
-- PaymentIntents charged to them, one per idempotency key, as Stripe keeps.
CREATE TABLE test_setup_sessions (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL,
    customer_id     TEXT NOT NULL,
    status          TEXT NOT NULL,
    setup_intent_id TEXT,
    created_at      TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP NOT NULL
);
CREATE TABLE test_cards (
    id              TEXT PRIMARY KEY,
    customer_id     TEXT NOT NULL,
    setup_intent_id TEXT NOT NULL UNIQUE,
    brand           TEXT NOT NULL,
    last4           TEXT NOT NULL,
    exp_month       INTEGER NOT NULL,
    exp_year        INTEGER NOT NULL,
    behavior        TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL
);
CREATE TABLE test_payment_intents (
    id              TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    payment_id      TEXT NOT NULL,
    customer_id     TEXT NOT NULL,
    card_id         TEXT NOT NULL,
    amount_cents    BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    status          TEXT NOT NULL,
    error_code      TEXT NOT NULL DEFAULT '',
    decline_code    TEXT NOT NULL DEFAULT '',
    error_message   TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMP NOT NULL
);

-- +goose Down
DROP TABLE test_payment_intents;
DROP TABLE test_cards;
DROP TABLE test_setup_sessions;
DROP TABLE alerts;
DROP INDEX key_month_usage_alerts;
ALTER TABLE key_month_usage DROP COLUMN alert_level;
ALTER TABLE accounts DROP COLUMN next_receipt;
DROP INDEX payments_receipts_unmailed;
DROP INDEX payments_topups_month;
DROP INDEX payments_topups_open;
DROP INDEX payments_receipt;
DROP INDEX payments_intent;
ALTER TABLE payments DROP COLUMN receipt_mailed_at;
ALTER TABLE payments DROP COLUMN receipt_number;
ALTER TABLE payments DROP COLUMN lease_until;
ALTER TABLE payments DROP COLUMN attempts;
ALTER TABLE payments DROP COLUMN failure_code;
ALTER TABLE payments DROP COLUMN card_last4;
ALTER TABLE payments DROP COLUMN card_brand;
ALTER TABLE payments DROP COLUMN card_id;
ALTER TABLE payments DROP COLUMN customer_id;
ALTER TABLE payments DROP COLUMN intent_id;
ALTER TABLE payments DROP COLUMN kind;
DROP INDEX wallets_low_due;
DROP INDEX wallets_topup_due;
ALTER TABLE wallets DROP COLUMN low_state;
ALTER TABLE wallets DROP COLUMN low_balance_micros;
ALTER TABLE wallets DROP COLUMN topup_not_before;
ALTER TABLE wallets DROP COLUMN topup_state;
ALTER TABLE wallets DROP COLUMN topup_threshold_micros;
DROP TABLE billing_profiles;
