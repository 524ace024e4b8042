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
	return goose.NewGoMigration(15,
		&goose.GoFunc{RunTx: execAll([]string{create15(postgres), usageHourlyFromLog, usageHourlyFromLedger})},
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

// create15 is version 15's table; on SQLite, WITHOUT ROWID.
func create15(postgres bool) string {
	if postgres {
		return usageHourlyTable
	}
	return usageHourlyTable + " WITHOUT ROWID"
}

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

// Version 21, on both engines: the roll-up's rows are per account, UTC
// hour, key and model, with each billing outcome's requests a column of
// its own (named as the outcome) instead of a part of the key. The Usage
// page never groups by outcome, and the outcome made each hour's rows
// three or four times as many: SQLite took 40 ms to sort a month of one
// busy account's rows by model, a third of that after. requests is still
// the row's total; errors, tokens and spend are summed over the outcomes.
//
// The way back makes version 15's rows again from the request log and the
// ledger, as version 15 did: per outcome, tokens and spend cannot be told
// apart in the summed rows.
func usageOutcomes(postgres bool) *goose.Migration {
	create := usageByOutcomeTable
	if !postgres {
		create += " WITHOUT ROWID"
	}
	return goose.NewGoMigration(21,
		&goose.GoFunc{RunTx: execAll([]string{create, usageByOutcomeFromRows, `DROP TABLE usage_hourly`,
			`ALTER TABLE usage_hourly_by_outcome RENAME TO usage_hourly`})},
		&goose.GoFunc{RunTx: execAll([]string{`DROP TABLE usage_hourly`, create15(postgres), usageHourlyFromLog,
			usageHourlyFromLedger})})
}

const usageByOutcomeTable = `CREATE TABLE usage_hourly_by_outcome (
    account_id            TEXT NOT NULL,
    hour_utc              TEXT NOT NULL,
    key_id                TEXT NOT NULL,
    model                 TEXT NOT NULL,
    requests              BIGINT NOT NULL DEFAULT 0,
    errors                BIGINT NOT NULL DEFAULT 0,
    prompt_tokens         BIGINT NOT NULL DEFAULT 0,
    completion_tokens     BIGINT NOT NULL DEFAULT 0,
    spend_micros          BIGINT NOT NULL DEFAULT 0,
    charged               BIGINT NOT NULL DEFAULT 0,
    charged_partial       BIGINT NOT NULL DEFAULT 0,
    not_charged_rejected  BIGINT NOT NULL DEFAULT 0,
    not_charged_failed    BIGINT NOT NULL DEFAULT 0,
    not_charged_cancelled BIGINT NOT NULL DEFAULT 0,
    not_charged_expired   BIGINT NOT NULL DEFAULT 0,
    not_charged_free      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, hour_utc, key_id, model)
)`

const usageByOutcomeFromRows = `INSERT INTO usage_hourly_by_outcome
SELECT account_id, hour_utc, key_id, model, SUM(requests), SUM(errors), SUM(prompt_tokens), SUM(completion_tokens),
    SUM(spend_micros),
    SUM(CASE WHEN outcome = 'charged' THEN requests ELSE 0 END),
    SUM(CASE WHEN outcome = 'charged_partial' THEN requests ELSE 0 END),
    SUM(CASE WHEN outcome = 'not_charged_rejected' THEN requests ELSE 0 END),
    SUM(CASE WHEN outcome = 'not_charged_failed' THEN requests ELSE 0 END),
    SUM(CASE WHEN outcome = 'not_charged_cancelled' THEN requests ELSE 0 END),
    SUM(CASE WHEN outcome = 'not_charged_expired' THEN requests ELSE 0 END),
    SUM(CASE WHEN outcome = 'not_charged_free' THEN requests ELSE 0 END)
FROM usage_hourly
GROUP BY account_id, hour_utc, key_id, model`
