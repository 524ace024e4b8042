package models

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// retryable reports whether err means "nothing was written, try again":
// PostgreSQL aborted the transaction for a deadlock or a serialization
// failure, or SQLite's lock was busy.
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
