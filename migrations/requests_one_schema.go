package migrations

import "slices"

// Version 13 on SQLite: the request log takes PostgreSQL's schema, so both
// engines keep the same columns and the same indexes. The table is keyed
// by its request id again; the Requests page's indexes are (account_id,
// <filter>, id), as on PostgreSQL; the integer place (seq, version 9) and
// the account and key numbers (account_num, key_num, version 10) are
// gone, and with them the numbering of rows at start-up. A page, a cursor,
// a time range and an export chunk are bounds on the id on either engine
// (see models.RequestFilter).
//
// Every row is kept: they are copied in the log's order into a new table,
// whose indexes are built once the rows are in, sorted, a pass each.
//
// On PostgreSQL the version is recorded and changes nothing.
var oneSchemaUp = slices.Concat(
	[]string{
		`DROP TRIGGER api_keys_num`,
		`DROP TRIGGER accounts_num`,
		`DROP INDEX requests_unnumbered`,
		`DROP INDEX requests_holds_open`,
		`DROP INDEX requests_id`,
	},
	dropPageIndexes,
	[]string{
		`CREATE TABLE requests_by_id (
    id                  TEXT PRIMARY KEY,
` + requestColumns + `
)`,
		`INSERT INTO requests_by_id (id, ` + requestColumnNames + `) SELECT id, ` + requestColumnNames + ` FROM requests ORDER BY seq`,
		`DROP TABLE requests`,
		`ALTER TABLE requests_by_id RENAME TO requests`,
		`DROP INDEX api_keys_num`,
		`ALTER TABLE api_keys DROP COLUMN num`,
		`DROP INDEX accounts_num`,
		`ALTER TABLE accounts DROP COLUMN num`,
	},
	pageIndexes("requests", "account_id", "key_id", "id"),
	[]string{`CREATE INDEX requests_holds_open ON requests (account_id, hold_expires_at) WHERE hold_status = 'open'`},
)

// oneSchemaDown puts back versions 9 and 10.
func oneSchemaDown() []string { return slices.Concat(requestsSeqUp(), accountNumUp) }
