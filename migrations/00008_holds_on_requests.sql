-- +goose Up
-- A call's hold lives on its request row, which already carried its amount
-- (hold_micros) and what was captured (charged_micros): placing the hold is
-- the row's insert and ending it is the row's completion, so the money path
-- writes one row less at each end. hold_status is '' for a request that
-- held nothing, else open | captured | released | expired; the key's month
-- a hold counts against is the month (UTC) of held_at.
ALTER TABLE requests ADD COLUMN hold_status TEXT NOT NULL DEFAULT '';
ALTER TABLE requests ADD COLUMN held_at TIMESTAMP;
ALTER TABLE requests ADD COLUMN hold_expires_at TIMESTAMP;
ALTER TABLE requests ADD COLUMN hold_ended_at TIMESTAMP;

UPDATE requests SET hold_status = holds.status, held_at = holds.created_at,
    hold_expires_at = holds.expires_at, hold_ended_at = holds.ended_at
FROM holds WHERE holds.request_id = requests.id;

-- The reaper and the ledger check look only at open holds: a partial index
-- holds just those, so ending a hold removes one entry.
CREATE INDEX requests_holds_open ON requests (account_id, hold_expires_at) WHERE hold_status = 'open';

-- A task's hold is its request's.
ALTER TABLE tasks DROP COLUMN hold_id;
DROP TABLE holds;

-- +goose Down
CREATE TABLE holds (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts (id),
    key_id          TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    month           TEXT NOT NULL,
    amount_micros   BIGINT NOT NULL CHECK (amount_micros >= 0),
    status          TEXT NOT NULL,
    captured_micros BIGINT NOT NULL DEFAULT 0,
    created_at      TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP NOT NULL,
    ended_at        TIMESTAMP
);
CREATE INDEX holds_open ON holds (expires_at) WHERE status = 'open';
CREATE INDEX holds_request ON holds (request_id);

-- A hold's id was its own; the request's stands in for it.
INSERT INTO holds (id, account_id, key_id, request_id, month, amount_micros, status, captured_micros,
    created_at, expires_at, ended_at)
SELECT 'hold_' || substr(id, 5), account_id, key_id, id, substr(CAST(held_at AS TEXT), 1, 7), hold_micros, hold_status,
    CASE WHEN hold_status = 'captured' THEN charged_micros ELSE 0 END, held_at, hold_expires_at, hold_ended_at
FROM requests WHERE hold_status <> '';

ALTER TABLE tasks ADD COLUMN hold_id TEXT NOT NULL DEFAULT '';
UPDATE tasks SET hold_id = 'hold_' || substr(request_id, 5);

DROP INDEX requests_holds_open;
ALTER TABLE requests DROP COLUMN hold_ended_at;
ALTER TABLE requests DROP COLUMN hold_expires_at;
ALTER TABLE requests DROP COLUMN held_at;
ALTER TABLE requests DROP COLUMN hold_status;
