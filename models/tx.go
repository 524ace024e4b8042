package models

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// tx runs fn in a write transaction, retrying it a few times when
// PostgreSQL aborts it for a deadlock or a serialization failure: both
// mean "nothing was written, try again".
func (s *Store) tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return retrying(ctx, func() error { return s.db.w.WithContext(ctx).Transaction(fn) })
}

func retryable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40P01" || pgErr.Code == "40001"
	}
	return strings.Contains(err.Error(), "database is locked")
}

// retrying runs fn again, a few times, while it fails in a way that means
// "nothing was written, try again".
func retrying(ctx context.Context, fn func() error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = fn(); !retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
		}
	}
	return err
}
