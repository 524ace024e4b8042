package models

import (
	"context"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"

	"ttconsole/migrations"
)

// RetentionBatch is how many requests one purge transaction deletes: small
// enough that the writer (SQLite has one) is free again within
// milliseconds, so traffic never waits long behind a purge.
const RetentionBatch = 500

// PurgeRequests deletes the request log older than before, with each
// request's billing timeline (its hold is on its row), in transactions of
// at most batch requests, pausing between them. Requests still pending
// (their hold open) are kept; the ledger and tasks are money records and
// are never purged, so every charge stays with its request id. It
// returns how many requests it deleted; ctx ends it between batches.
//
// On PostgreSQL the log is partitioned by month, and whole months are
// dropped instead (see dropRequestPartitions): a month is kept until it
// has entirely passed before, and while it holds an open hold. Only the
// rows of the default partition, which belong to no month's partition,
// are deleted in batches.
func (s *Store) PurgeRequests(ctx context.Context, before time.Time, batch int, pause time.Duration) (int, error) {
	if !s.db.Postgres {
		return s.purgeRows(ctx, "requests", before, batch, pause)
	}
	dropped, err := s.dropRequestPartitions(ctx, before)
	total := 0
	for _, d := range dropped {
		total += int(d.Requests)
	}
	if err != nil {
		return total, err
	}
	n, err := s.purgeRows(ctx, migrations.RequestsDefaultPartition, before, batch, pause)
	return total + n, err
}

var (
	qPurgeRequests = newQuery(`DELETE FROM requests WHERE id >= ? AND id <= ? AND created_at < ?
		AND billing_outcome <> '` + OutcomePending + `'`)
	qPurgeDefaultPartition = newQuery(`DELETE FROM ` + migrations.RequestsDefaultPartition + ` WHERE id >= ? AND id <= ?
		AND created_at < ? AND billing_outcome <> '` + OutcomePending + `'`)
)

// purgeRows deletes the rows of table, the request log or a partition of
// it, older than before and no longer pending, in batches.
func (s *Store) purgeRows(ctx context.Context, table string, before time.Time, batch int, pause time.Duration) (int, error) {
	if batch <= 0 {
		batch = RetentionBatch
	}
	// Request ids are time-ordered ULIDs, so the id index bounds the scan
	// to old rows; created_at is checked too, for ids made otherwise.
	bound := "req_" + ulid.MustNew(ulid.Timestamp(before), zeroEntropy{}).String()
	total := 0
	for {
		var ids []string
		if err := s.db.w.WithContext(ctx).Table(table).
			Where("id < ? AND created_at < ? AND billing_outcome <> ?", bound, before.UTC(), OutcomePending).
			Order("id").Limit(batch).Pluck("id", &ids).Error; err != nil {
			return total, err
		}
		if len(ids) == 0 {
			return total, nil
		}
		// The ids are the first of the table's order that may go, so the
		// range from the first to the last holds those rows and no other
		// that may not: one statement, an index range, in the group commit.
		purge := qPurgeRequests
		if table != "requests" {
			purge = qPurgeDefaultPartition
		}
		var deleted int64
		err := s.write(ctx, func(w *wtx) (err error) {
			deleted, err = w.exec(purge, ids[0], ids[len(ids)-1], before.UTC())
			return err
		})
		if err != nil {
			return total, err
		}
		total += int(deleted) // another instance purging too may have taken some
		if len(ids) < batch {
			return total, nil
		}
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(pause):
		}
	}
}

// zeroEntropy makes the smallest ULID of a millisecond.
type zeroEntropy struct{}

func (zeroEntropy) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// DroppedPartition is a month of the request log that retention dropped.
type DroppedPartition struct {
	Name     string
	Requests int64
}

// dropRequestPartitions drops, on PostgreSQL, every month's partition of
// the request log that ended at or before before, oldest first, and
// returns them. A month that still holds an open hold is kept whole until
// the hold ends (the reaper ends it); so is a month that straddles before,
// until it is entirely past it. A partition whose locks cannot be had at
// once is left for the next round. The ledger and tasks, which name
// request ids but hold no reference the database enforces, keep every
// entry.
func (s *Store) dropRequestPartitions(ctx context.Context, before time.Time) ([]DroppedPartition, error) {
	names, err := requestPartitions(ctx, s.db.sqlDB())
	if err != nil {
		return nil, err
	}
	var out []DroppedPartition
	for _, name := range names { // in month order: the names sort so
		p, ok := migrations.ParseRequestPartition(name)
		if !ok || p.End().After(before) {
			continue
		}
		d, err := s.dropRequestPartition(ctx, name)
		if err != nil {
			return out, err
		}
		if d != nil {
			out = append(out, *d)
		}
	}
	return out, nil
}

// dropRequestPartition drops one partition, unless it holds an open hold
// (then it returns nil).
func (s *Store) dropRequestPartition(ctx context.Context, name string) (*DroppedPartition, error) {
	tx, err := s.db.sqlDB().BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '`+partitionDDLLockTimeout+`'`); err != nil {
		return nil, err
	}
	// No hold of the month opens or ends between the check and the drop.
	if _, err := tx.ExecContext(ctx, `LOCK TABLE `+name+` IN SHARE MODE`); err != nil {
		return nil, err
	}
	var open bool
	// The status as a literal, so that the partial index of open holds serves.
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+name+` WHERE hold_status = 'open')`).Scan(&open); err != nil {
		return nil, err
	}
	if open {
		return nil, nil
	}
	d := &DroppedPartition{Name: name}
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+name).Scan(&d.Requests); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `DROP TABLE `+name); err != nil {
		return nil, fmt.Errorf("drop request log partition %s: %w", name, err)
	}
	return d, tx.Commit()
}
