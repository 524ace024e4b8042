-- +goose Up
-- What a wallet owes: the part of a late charge its available balance could
-- not cover. A stream whose hold had already ended (its instance lost the
-- database for longer than the hold TTL) is still charged for the tokens it
-- delivered, but never below zero; the rest is recorded here, counts against
-- new holds, and the next credit pays it off in the ledger.
ALTER TABLE wallets ADD COLUMN debt_micros BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE wallets DROP COLUMN debt_micros;
