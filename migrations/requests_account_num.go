package migrations

import "slices"

// Version 10 on SQLite: the request indexes lead with a small integer for
// the account, account_num, instead of its 30-character id, and the key
// index holds a small integer for the key, key_num, instead of its
// 30-character id. An entry of the five indexes where a new row lands
// mid-index (status class, error type, key, model, outcome) shrinks by 30
// to 60 bytes, so each insert takes fewer comparisons on its way down and
// splits fewer pages.
//
// An account's number is accounts.num and a key's api_keys.num, each
// given by a trigger when the row is made: the number after every one in
// use (for accounts, on requests too), so none is given twice. Keys are
// never deleted, only revoked, so the keys' own numbers suffice there.
//
// A request's numbers are written with the row, read from its account and
// key ids (models.newLogInsert, the seed). They are not filled by a
// trigger: a row trigger makes SQLite stage every multi-row INSERT in a
// temporary table first, which cost the seed most of what the narrower
// indexes gave. A row that arrives without them anyway (written by an
// older binary after a rollback) is numbered at the next start-up
// (models.DB.Migrate).
var accountNumUp = slices.Concat(
	[]string{
		`ALTER TABLE accounts ADD COLUMN num INTEGER`,
		`UPDATE accounts SET num = rowid`,
		`CREATE UNIQUE INDEX accounts_num ON accounts (num)`,
		`ALTER TABLE api_keys ADD COLUMN num INTEGER`,
		`UPDATE api_keys SET num = rowid`,
		`CREATE UNIQUE INDEX api_keys_num ON api_keys (num)`,
		`ALTER TABLE requests ADD COLUMN account_num INTEGER`,
		`ALTER TABLE requests ADD COLUMN key_num INTEGER`,
	},
	// The indexes go before the rows are numbered, which then rewrites only
	// the table, and are built afterwards, sorted, in one pass each.
	dropPageIndexes,
	[]string{`UPDATE requests SET
    account_num = (SELECT num FROM accounts WHERE accounts.id = requests.account_id),
    key_num = (SELECT num FROM api_keys WHERE api_keys.id = requests.key_id)
WHERE account_id IS NOT NULL`},
	// The Requests page's indexes (see versions 5 and 9), each now
	// (account_num, <filter>, seq).
	pageIndexes("requests", "account_num", "key_num"),
	[]string{
		// Rows written without their numbers, which Migrate numbers at
		// start-up: this index holds only them.
		`CREATE INDEX requests_unnumbered ON requests (account_id) WHERE account_num IS NULL AND account_id IS NOT NULL`,
		`CREATE TRIGGER accounts_num AFTER INSERT ON accounts WHEN NEW.num IS NULL BEGIN
    UPDATE accounts SET num = 1 + max(
        coalesce((SELECT max(num) FROM accounts), 0),
        coalesce((SELECT max(account_num) FROM requests), 0))
    WHERE id = NEW.id;
END`,
		`CREATE TRIGGER api_keys_num AFTER INSERT ON api_keys WHEN NEW.num IS NULL BEGIN
    UPDATE api_keys SET num = 1 + coalesce((SELECT max(num) FROM api_keys), 0) WHERE id = NEW.id;
END`,
	},
)

var accountNumDown = slices.Concat(
	[]string{
		`DROP TRIGGER api_keys_num`,
		`DROP TRIGGER accounts_num`,
		`DROP INDEX requests_unnumbered`,
	},
	dropPageIndexes,
	[]string{
		`ALTER TABLE requests DROP COLUMN key_num`,
		`ALTER TABLE requests DROP COLUMN account_num`,
		`DROP INDEX api_keys_num`,
		`ALTER TABLE api_keys DROP COLUMN num`,
		`DROP INDEX accounts_num`,
		`ALTER TABLE accounts DROP COLUMN num`,
	},
	pageIndexes("requests", "account_id", "key_id"),
)
