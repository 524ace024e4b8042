package models

import (
	"context"
	"database/sql"

	"gorm.io/gorm"
)

// Writer is the database's write handle, for the tests that write rows as
// an older schema held them, or look where no store method does (a
// schema's columns and indexes, a row's partition).
func (db *DB) Writer() *gorm.DB { return db.w }

// SQL is the writer's plain driver handle, for the tests that need a
// connection of their own (query plans, settings of the connection).
func (db *DB) SQL() *sql.DB { return db.sqlDB() }

// ExportBothWays reads what EachRequestText would give on both of its
// paths: rows SQLite packed (with how many chunks had to be read again
// through the driver), and every row read through the driver.
func (s *Store) ExportBothWays(ctx context.Context, accountID string, f RequestFilter) (packed, slow []RequestText, reread int, err error) {
	labels, err := s.RequestKeyLabels(ctx, accountID)
	if err != nil {
		return nil, nil, 0, err
	}
	reread, err = s.eachRequestTextPacked(ctx, accountID, f, labels, func(t *RequestText) error {
		packed = append(packed, *t)
		return nil
	})
	if err != nil {
		return nil, nil, 0, err
	}
	err = s.eachRequestTextSlow(ctx, accountID, f, labels, func(t *RequestText) error {
		slow = append(slow, *t)
		return nil
	})
	return packed, slow, reread, err
}

// WriteHistoryPlain is WriteHistory binding one parameter per column, as
// on PostgreSQL, whatever the database.
func (s *Store) WriteHistoryPlain(ctx context.Context, accountID string, h History) (int, error) {
	return s.writeHistory(ctx, accountID, h, false)
}

// HoldWrites keeps the group commit busy until release is called, so the
// writes queued meanwhile (queued waits until there are n) share the next
// group.
func (s *Store) HoldWrites() (queued func(n int), release func()) {
	started, rel := make(chan struct{}), make(chan struct{})
	go s.batch.do(func(*wtx) error {
		close(started)
		<-rel
		return nil
	})
	<-started
	return func(n int) { waitQueued(s.batch, n) }, func() { close(rel) }
}

// BulkHolds is how many holds were placed together with others.
func (s *Store) BulkHolds() int64 { return s.batch.bulkHolds.Load() }

// RequestByIDStatements are the money path's statements that find a
// request row by its id (their text arguments), for each
// engine: name → SQLite's text, PostgreSQL's text.
func RequestByIDStatements() map[string][2]string {
	out := map[string][2]string{}
	for name, q := range map[string]*query{
		"complete held": qCompleteHeld, "complete held clean": qCompleteHeldClean, "end hold": qEndHold,
		"expired unsettled": qExpiredUnsettled, "complete late": qCompleteLate,
	} {
		out[name] = [2]string{q.sqlite, q.pg}
	}
	return out
}
