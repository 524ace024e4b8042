package models

import (
	"context"
	"database/sql"
	"slices"
	"time"

	"ttconsole/migrations"
)

// On PostgreSQL the request log is partitioned by month of its ids (see
// migrations/requests_partitions.go). The server keeps the partitions of
// this month and the next two ready, so a month's calls never wait for
// one to be made, and retention drops whole months (retention.go).

// partitionDDLLockTimeout bounds how long making or dropping a partition
// waits for the locks it needs. Attaching a partition locks the default
// partition, and dropping one locks the whole request log, each for a
// moment; while such a statement waits for a long reader (a CSV export,
// say) every new query of those tables would queue behind it. So it gives
// up soon, and the reaper tries again a minute later: partitions are made
// two months ahead, and a month past retention can wait.
const partitionDDLLockTimeout = "500ms"

// partitionsLock is the advisory lock under which instances make
// partitions one at a time.
const partitionsLock = 7_245_318_806_031_517_012

// EnsureRequestPartitions makes the request log's partitions of now's
// month and the next two on PostgreSQL, those missing, and returns their
// names; it does nothing on SQLite. Several instances may run it at once:
// they take turns, and each makes only what is still missing. When every
// partition exists it only reads the catalog.
func (s *Store) EnsureRequestPartitions(ctx context.Context, now time.Time) ([]string, error) {
	if !s.db.Postgres {
		return nil, nil
	}
	return s.makeRequestPartitions(ctx, migrations.AheadMonths(now))
}

// makeRequestPartitions makes the partitions of months that are missing,
// on PostgreSQL, and returns their names.
func (s *Store) makeRequestPartitions(ctx context.Context, months []migrations.RequestPartition) ([]string, error) {
	missing := func(q interface {
		QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	}) ([]migrations.RequestPartition, error) {
		have, err := requestPartitions(ctx, q)
		if err != nil {
			return nil, err
		}
		var out []migrations.RequestPartition
		for _, p := range months {
			if !slices.Contains(have, p.Name()) {
				out = append(out, p)
			}
		}
		return out, nil
	}
	todo, err := missing(s.db.sqlDB())
	if err != nil || len(todo) == 0 {
		return nil, err
	}
	tx, err := s.db.sqlDB().BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	// Instances wait their turn here as long as it takes; only the locks
	// of the request log itself are given up on soon.
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(partitionsLock)); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '`+partitionDDLLockTimeout+`'`); err != nil {
		return nil, err
	}
	if todo, err = missing(tx); err != nil { // another instance may have made them meanwhile
		return nil, err
	}
	var made []string
	for _, p := range todo {
		if err := p.Add(ctx, tx); err != nil {
			return nil, err
		}
		made = append(made, p.Name())
	}
	return made, tx.Commit()
}

// requestPartitions returns the names of the request log's partitions.
func requestPartitions(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'requests'::regclass ORDER BY c.relname`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}
