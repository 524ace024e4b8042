package migrations

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

// Version 12 on PostgreSQL: the request log is partitioned by month, so
// that retention drops a month whole instead of deleting its rows one by
// one, and a lookup, a page or an insert touches one month's table and
// indexes however long the log grows.
//
// The partition key is the request id. An id is "req_" and a ULID whose
// first 48 bits are the millisecond the call arrived, so a month's ids are
// one range of the id's order, from the smallest id its first millisecond
// can have to the next month's. Partitioned by id:
//   - the primary key stays (id) alone, as on SQLite: the database still
//     refuses a second row with the same request id (a key of a
//     partitioned table must hold the partition key, so partitioned by
//     created_at the key would be (id, created_at), unique per pair only);
//   - every lookup by id (the detail page, the hold's completion on the
//     money path, the reaper) prunes to one partition by the id alone,
//     with no window of times to guess from it;
//   - the Requests page's bounds are already id bounds (its time range and
//     its keyset cursor become ids, see models.RequestFilter), so a page
//     reads the months it shows and no other.
//
// A row whose id lies in no month's partition (an id not made by the
// product, or one dated beyond the months created) goes to the default
// partition, so an insert never fails; the server creates the partitions
// of this month and the next two ahead (models.DB.EnsureRequestPartitions).
//
// Every row is kept: the table is renamed, the partitioned one created
// with one partition for each month that holds rows, the rows copied, the
// old table dropped, and the indexes built once the rows are in.
//
// On SQLite the version is recorded and changes nothing.
func partitionRequestsUp(ctx context.Context, tx *sql.Tx) error {
	err := execIn(ctx, tx,
		`ALTER TABLE requests RENAME TO requests_unpartitioned`,
		`ALTER TABLE requests_unpartitioned RENAME CONSTRAINT requests_pkey TO requests_unpartitioned_pkey`,
		// The copy needs none of them, and their names go to the new table's.
		`DROP INDEX requests_account, requests_account_status_class, requests_account_error_type,
    requests_account_key, requests_account_model, requests_account_outcome, requests_holds_open`,
		`CREATE TABLE requests (LIKE requests_unpartitioned INCLUDING DEFAULTS) PARTITION BY RANGE (id)`,
	)
	if err != nil {
		return err
	}
	months, err := monthsWithRows(ctx, tx, "requests_unpartitioned")
	if err != nil {
		return err
	}
	months = append(months, AheadMonths(time.Now())...)
	slices.SortFunc(months, func(a, b RequestPartition) int { return a.Month.Compare(b.Month) })
	for _, p := range slices.Compact(months) {
		if err := p.Add(ctx, tx); err != nil {
			return err
		}
	}
	return execIn(ctx, tx, append([]string{
		`CREATE TABLE ` + RequestsDefaultPartition + ` PARTITION OF requests DEFAULT`,
		`SET LOCAL maintenance_work_mem = '256MB'`,
		`INSERT INTO requests SELECT * FROM requests_unpartitioned`,
		`DROP TABLE requests_unpartitioned`,
	}, requestIndexesPG...)...)
}

// requestIndexesPG are the request log's key and indexes on PostgreSQL
// (versions 3, 5 and 8): each index of the Requests page ends with the id,
// the log's order.
var requestIndexesPG = []string{
	`ALTER TABLE requests ADD CONSTRAINT requests_pkey PRIMARY KEY (id)`,
	`CREATE INDEX requests_account ON requests (account_id, id)`,
	`CREATE INDEX requests_account_status_class ON requests (account_id, (status / 100), id)`,
	`CREATE INDEX requests_account_error_type ON requests (account_id, error_type, id)`,
	`CREATE INDEX requests_account_key ON requests (account_id, key_id, id)`,
	`CREATE INDEX requests_account_model ON requests (account_id, model, id)`,
	`CREATE INDEX requests_account_outcome ON requests (account_id, billing_outcome, id)`,
	`CREATE INDEX requests_holds_open ON requests (account_id, hold_expires_at) WHERE hold_status = 'open'`,
}

// partitionRequestsDown puts every row back into one table.
func partitionRequestsDown(ctx context.Context, tx *sql.Tx) error {
	return execIn(ctx, tx, append([]string{
		`CREATE TABLE requests_unpartitioned (LIKE requests INCLUDING DEFAULTS)`,
		`INSERT INTO requests_unpartitioned SELECT * FROM requests`,
		`DROP TABLE requests`,
		`ALTER TABLE requests_unpartitioned RENAME TO requests`,
	}, requestIndexesPG...)...)
}

// monthsWithRows returns the months whose partition would hold a row of
// table, walking its primary key from month to month: a seek for each
// month with rows, never a scan. An id that is no request id is stepped
// over, one seek each, and after a great many of them the rest of the
// table is left to the default partition.
func monthsWithRows(ctx context.Context, tx *sql.Tx, table string) ([]RequestPartition, error) {
	var out []RequestPartition
	from, op := "", ">="
	for range 10_000 {
		var id sql.NullString
		if err := tx.QueryRowContext(ctx, `SELECT min(id) FROM `+table+` WHERE id `+op+` $1`, from).Scan(&id); err != nil {
			return nil, err
		}
		if !id.Valid {
			break
		}
		at, ok := requestIDTime(id.String)
		if !ok {
			from, op = id.String, ">"
			continue
		}
		p := RequestPartitionOf(at)
		out = append(out, p)
		from, op = p.To(), ">="
	}
	return out, nil
}

// RequestsDefaultPartition holds the request rows of no month's partition.
const RequestsDefaultPartition = "requests_default"

// RequestPartition is the request log's partition of one calendar month
// (UTC) on PostgreSQL: the requests whose ids were made in it.
type RequestPartition struct {
	Month time.Time // its first instant, UTC
}

// RequestPartitionOf is the partition of the month t falls in.
func RequestPartitionOf(t time.Time) RequestPartition {
	t = t.UTC()
	return RequestPartition{Month: time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)}
}

// AheadMonths are the partitions the server keeps ready at now: this
// month's and the next two.
func AheadMonths(now time.Time) []RequestPartition {
	p := RequestPartitionOf(now)
	return []RequestPartition{p, p.Next(), p.Next().Next()}
}

// ParseRequestPartition reads a partition's month from its name.
func ParseRequestPartition(name string) (RequestPartition, bool) {
	t, err := time.Parse("requests_2006_01", name)
	if err != nil {
		return RequestPartition{}, false
	}
	return RequestPartition{Month: t}, true
}

// Name is the partition's table: requests_2026_05.
func (p RequestPartition) Name() string { return p.Month.Format("requests_2006_01") }

// Next is the following month's partition.
func (p RequestPartition) Next() RequestPartition {
	return RequestPartition{Month: p.Month.AddDate(0, 1, 0)}
}

// End is when the month ends: every request of the partition arrived
// before it.
func (p RequestPartition) End() time.Time { return p.Month.AddDate(0, 1, 0) }

// From is the smallest id the partition holds.
func (p RequestPartition) From() string { return firstIDAt(p.Month) }

// To is the smallest id of the next month, which the partition does not
// hold.
func (p RequestPartition) To() string { return firstIDAt(p.End()) }

// Add creates the partition and attaches it to the request log. Rows of
// its month that went to the default partition meanwhile move into it
// first (PostgreSQL refuses to attach a partition whose rows the default
// one holds). The partition is made apart and then attached, rather than
// created as a partition at once: attaching takes a weaker lock on the
// request log, one that lets its reads and inserts go on meanwhile. The
// default partition is locked while it is checked, so callers that run
// beside traffic set a lock_timeout and try again later.
func (p RequestPartition) Add(ctx context.Context, tx *sql.Tx) error {
	name := p.Name()
	stmts := []string{`CREATE TABLE IF NOT EXISTS ` + name + ` (LIKE requests INCLUDING DEFAULTS)`}
	var hasDefault bool
	if err := tx.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, RequestsDefaultPartition).Scan(&hasDefault); err != nil {
		return err
	}
	bounds := fmt.Sprintf("id >= '%s' AND id < '%s'", p.From(), p.To())
	if hasDefault {
		stmts = append(stmts, `WITH moved AS (DELETE FROM `+RequestsDefaultPartition+` WHERE `+bounds+` RETURNING *)
INSERT INTO `+name+` SELECT * FROM moved`)
	}
	stmts = append(stmts, fmt.Sprintf(`ALTER TABLE requests ATTACH PARTITION %s FOR VALUES FROM ('%s') TO ('%s')`,
		name, p.From(), p.To()))
	if err := execIn(ctx, tx, stmts...); err != nil {
		return fmt.Errorf("request log partition %s: %w", name, err)
	}
	return nil
}

// firstIDAt is the smallest request id that can be made at t (as
// models.RequestIDAt).
func firstIDAt(t time.Time) string {
	var u ulid.ULID
	_ = u.SetTime(ulid.Timestamp(t)) // every month the product will see fits in 48 bits
	return "req_" + u.String()
}

// requestIDTime is when a request id was made.
func requestIDTime(id string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(id, "req_")
	if !ok || len(rest) != ulid.EncodedSize {
		return time.Time{}, false
	}
	u, err := ulid.ParseStrict(rest)
	if err != nil || u.String() != rest { // lower case sorts apart from the ids the product makes
		return time.Time{}, false
	}
	return ulid.Time(u.Time()).UTC(), true
}

func execIn(ctx context.Context, tx *sql.Tx, stmts ...string) error {
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	return nil
}
