package migrations

import (
	"context"
	"database/sql"
	"strconv"
	"strings"

	"github.com/pressly/goose/v3"
)

// Go returns the migrations written in Go, which differ between the two
// databases; postgres says which one they run on.
func Go(postgres bool) []*goose.Migration {
	if postgres {
		// PostgreSQL keeps its request log in id order and by account id:
		// versions 9 and 10 (which version 13 undoes on SQLite) are
		// recorded and change nothing. Version 12
		// partitions it by month (requests_partitions.go).
		return []*goose.Migration{goose.NewGoMigration(9, nil, nil), goose.NewGoMigration(10, nil, nil),
			goose.NewGoMigration(12, &goose.GoFunc{RunTx: partitionRequestsUp}, &goose.GoFunc{RunTx: partitionRequestsDown}),
			goose.NewGoMigration(13, nil, nil), // SQLite's log takes this engine's schema
			refusedHold(true), usageHourly(true), usageOutcomes(true)}
	}
	return []*goose.Migration{
		goose.NewGoMigration(9, &goose.GoFunc{RunTx: execAll(requestsSeqUp())}, &goose.GoFunc{RunTx: execAll(requestsSeqDown)}),
		goose.NewGoMigration(10, &goose.GoFunc{RunTx: execAll(accountNumUp)}, &goose.GoFunc{RunTx: execAll(accountNumDown)}),
		goose.NewGoMigration(12, nil, nil), // SQLite's log is one table
		goose.NewGoMigration(13, &goose.GoFunc{RunTx: execAll(oneSchemaUp)}, &goose.GoFunc{RunTx: execAll(oneSchemaDown())}),
		refusedHold(false),
		usageHourly(false),
		usageOutcomes(false),
	}
}

func refusedHold(postgres bool) *goose.Migration {
	update := `UPDATE requests SET refused_hold_micros = ? WHERE id = ?`
	if postgres {
		update = `UPDATE requests SET refused_hold_micros = $1 WHERE id = $2`
	}
	return goose.NewGoMigration(14, &goose.GoFunc{RunTx: refusedHoldUp(update)}, &goose.GoFunc{RunTx: refusedHoldDown})
}

// Version 9 on SQLite: the request log is kept in order by an integer, seq,
// the table's rowid, instead of by the 30-character request id. Every
// index of the Requests page ends with the rowid anyway, so (account_id,
// model) pages in seq order as (account_id, model, id) did in id order,
// with entries about 40% smaller: fewer bytes to write for every row, and
// fewer page splits in the five indexes where a new row lands mid-index
// (status class, error type, key, model, outcome). A million seeded
// requests take 739 MB instead of 905.
//
// A request id's seq is its millisecond and 16 bits that place it within
// it (see models.RequestSeq). Ids made before this version have random
// bits there, so their rows are numbered within each millisecond in id
// order instead: seq order is id order either way.
func requestsSeqUp() []string {
	up := []string{
		`CREATE TABLE requests_by_seq (
    seq                 INTEGER PRIMARY KEY,
    id                  TEXT NOT NULL,
` + requestColumns + `
)`,
	}
	// The old indexes go first so the new ones can take their names;
	// being there before the rows, they are filled as the rows go in, in
	// seq order, with nothing to sort.
	up = append(up, dropPageIndexes...)
	up = append(up,
		`DROP INDEX requests_holds_open`,
		`CREATE UNIQUE INDEX requests_id ON requests_by_seq (id)`)
	// The Requests page's indexes (see version 5), each now (account_id,
	// <filter>, seq).
	up = append(up, pageIndexes("requests_by_seq", "account_id", "key_id")...)
	return append(up,
		`CREATE INDEX requests_holds_open ON requests_by_seq (account_id, hold_expires_at) WHERE hold_status = 'open'`,
		// Rows are read in id order through the primary key and numbered
		// within their millisecond by counting the ids before them in it
		// (the ids of a millisecond share their first 14 characters): a
		// seek each, where a window function would sort the whole table.
		`INSERT INTO requests_by_seq (seq, id, `+requestColumnNames+`)
SELECT (`+ulidMillis("r.id")+` << 16) + (SELECT count(*) FROM requests AS same
    WHERE same.id >= substr(r.id, 1, 14) AND same.id < r.id), r.id, `+requestColumnNames+`
FROM requests AS r ORDER BY r.id`,
		`DROP TABLE requests`,
		`ALTER TABLE requests_by_seq RENAME TO requests`,
	)
}

// dropPageIndexes drops the Requests page's six indexes.
var dropPageIndexes = []string{
	`DROP INDEX requests_account`,
	`DROP INDEX requests_account_status_class`,
	`DROP INDEX requests_account_error_type`,
	`DROP INDEX requests_account_key`,
	`DROP INDEX requests_account_model`,
	`DROP INDEX requests_account_outcome`,
}

// pageIndexes creates the Requests page's six indexes on table, each led
// by the account column, for the list unfiltered and by each filter (the
// key filter's column is key), and each ended by order, the log's order
// (none: the table's rowid, which ends every index anyway).
func pageIndexes(table, account, key string, order ...string) []string {
	on := " ON " + table + " (" + account
	end := ")"
	if len(order) > 0 {
		end = ", " + order[0] + ")"
	}
	return []string{
		`CREATE INDEX requests_account` + on + end,
		`CREATE INDEX requests_account_status_class` + on + `, (status / 100)` + end,
		`CREATE INDEX requests_account_error_type` + on + `, error_type` + end,
		`CREATE INDEX requests_account_key` + on + `, ` + key + end,
		`CREATE INDEX requests_account_model` + on + `, model` + end,
		`CREATE INDEX requests_account_outcome` + on + `, billing_outcome` + end,
	}
}

var requestsSeqDown = []string{
	`CREATE TABLE requests_by_id (
    id                  TEXT PRIMARY KEY,
` + requestColumns + `
)`,
	`INSERT INTO requests_by_id (id, ` + requestColumnNames + `) SELECT id, ` + requestColumnNames + ` FROM requests ORDER BY seq`,
	`DROP TABLE requests`,
	`ALTER TABLE requests_by_id RENAME TO requests`,
	`CREATE INDEX requests_account ON requests (account_id, id)`,
	`CREATE INDEX requests_account_status_class ON requests (account_id, (status / 100), id)`,
	`CREATE INDEX requests_account_error_type ON requests (account_id, error_type, id)`,
	`CREATE INDEX requests_account_key ON requests (account_id, key_id, id)`,
	`CREATE INDEX requests_account_model ON requests (account_id, model, id)`,
	`CREATE INDEX requests_account_outcome ON requests (account_id, billing_outcome, id)`,
	`CREATE INDEX requests_holds_open ON requests (account_id, hold_expires_at) WHERE hold_status = 'open'`,
}

// requestColumns are the request table's columns after its id, as
// versions 3 and 8 made them.
const requestColumns = `    account_id          TEXT, -- NULL when the caller was never identified
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
    completed_at        TIMESTAMP,
    hold_status         TEXT NOT NULL DEFAULT '',
    held_at             TIMESTAMP,
    hold_expires_at     TIMESTAMP,
    hold_ended_at       TIMESTAMP`

const requestColumnNames = `account_id, key_id, method, path, model, status, error_type, error_message, error_body,
    client_ip, stream, latency_ms, prompt_tokens, completion_tokens, hold_micros, charged_micros, billing_outcome,
    outcome_detail, ratelimit_limit, ratelimit_remaining, ratelimit_reset, retry_after, created_at, completed_at,
    hold_status, held_at, hold_expires_at, hold_ended_at`

// ulidMillis is SQL for the millisecond of the ULID in a "req_" id held
// by col: its first ten characters, Crockford base 32.
func ulidMillis(col string) string {
	terms := make([]string, 10)
	for i := range terms {
		digit := "(instr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', upper(substr(" + col + ", " + strconv.Itoa(5+i) + ", 1))) - 1)"
		terms[i] = "(" + digit + " << " + strconv.Itoa(5*(9-i)) + ")"
	}
	return "(" + strings.Join(terms, " + ") + ")"
}

func execAll(stmts []string) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		for _, s := range stmts {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return err
			}
		}
		return nil
	}
}
