package migrations

import (
	"context"
	"database/sql"

	"github.com/pressly/goose/v3"
)

// Version 15, on both engines: the usage roll-up, what the Usage page
// reads instead of the request log. Per account, UTC hour, key, model and
// billing outcome: how many requests reached that outcome, how many of
// them had a status of 400 or above, their tokens, and what was charged.
// The money path writes it in the transaction that gives a request its
// final outcome or charges it, so it never disagrees with the ledger.
//
// hour_utc is 'YYYY-MM-DD HH': the hour of the request's final outcome,
// which is also the hour of its ledger charge (a call is charged when it
// completes), so the spend of any range of whole hours equals the
// ledger's charges of that range. Text rather than a time so that both
// engines make it from a timestamp the same way: the first 13 characters
// of the timestamp as text (SQLite keeps times as UTC text, and
// PostgreSQL's ISO output has the same shape). key_id is empty for none:
// a primary key column cannot be NULL. A late charge paid from a recharge
// (see 00011_wallet_debt.sql) has no request: it counts under an empty key
// and model, with no requests.
//
// On SQLite the table is WITHOUT ROWID: its rows live in the primary
// key's own B-tree, in (account, hour, …) order, so the Usage page reads
// an account's range in one pass, without a lookup per row, and an upsert
// changes one tree rather than a table and its key's index (the page read
// a month twice as fast). That clause is all that differs between the
// engines.
func usageHourly(postgres bool) *goose.Migration {
	create := usageHourlyTable
	if !postgres {
		create += " WITHOUT ROWID"
	}
	return goose.NewGoMigration(15,
		&goose.GoFunc{RunTx: execAll([]string{create, usageHourlyFromLog, usageHourlyFromLedger})},
		&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `DROP TABLE usage_hourly`)
			return err
		}})
}

const usageHourlyTable = `CREATE TABLE usage_hourly (
    account_id        TEXT NOT NULL,
    hour_utc          TEXT NOT NULL,
    key_id            TEXT NOT NULL,
    model             TEXT NOT NULL,
    outcome           TEXT NOT NULL,
    requests          BIGINT NOT NULL DEFAULT 0,
    errors            BIGINT NOT NULL DEFAULT 0,
    prompt_tokens     BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    spend_micros      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, hour_utc, key_id, model, outcome)
)`

// The history so far: requests from the log (those with a final outcome),
// spend from the ledger's charges, each in its own hour.
const usageHourlyFromLog = `INSERT INTO usage_hourly (account_id, hour_utc, key_id, model, outcome, requests, errors,
    prompt_tokens, completion_tokens, spend_micros)
SELECT account_id, substr(CAST(COALESCE(completed_at, created_at) AS TEXT), 1, 13), COALESCE(key_id, ''), model,
    billing_outcome, COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), SUM(prompt_tokens),
    SUM(completion_tokens), 0
FROM requests
WHERE account_id IS NOT NULL AND billing_outcome <> 'pending'
GROUP BY account_id, substr(CAST(COALESCE(completed_at, created_at) AS TEXT), 1, 13), COALESCE(key_id, ''), model,
    billing_outcome`

const usageHourlyFromLedger = `INSERT INTO usage_hourly (account_id, hour_utc, key_id, model, outcome, spend_micros)
SELECT l.account_id, substr(CAST(l.created_at AS TEXT), 1, 13), COALESCE(r.key_id, ''), COALESCE(r.model, ''),
    COALESCE(r.billing_outcome, 'charged'), -SUM(l.amount_micros)
FROM ledger_entries AS l LEFT JOIN requests AS r ON r.id = l.request_id
WHERE l.kind = 'charge'
GROUP BY l.account_id, substr(CAST(l.created_at AS TEXT), 1, 13), COALESCE(r.key_id, ''), COALESCE(r.model, ''),
    COALESCE(r.billing_outcome, 'charged')
ON CONFLICT (account_id, hour_utc, key_id, model, outcome)
DO UPDATE SET spend_micros = usage_hourly.spend_micros + excluded.spend_micros`
