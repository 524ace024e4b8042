package models

import (
	"context"
	"time"

	"github.com/oklog/ulid/v2"
	"gorm.io/gorm"
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
func (s *Store) PurgeRequests(ctx context.Context, before time.Time, batch int, pause time.Duration) (int, error) {
	if batch <= 0 {
		batch = RetentionBatch
	}
	// Request ids are time-ordered ULIDs, so the id index bounds the scan
	// to old rows; created_at is checked too, for ids made otherwise.
	bound := "req_" + ulid.MustNew(ulid.Timestamp(before), zeroEntropy{}).String()
	total := 0
	for {
		var ids []string
		if err := s.db.W.WithContext(ctx).Model(&Request{}).
			Where("id < ? AND created_at < ? AND billing_outcome <> ?", bound, before.UTC(), OutcomePending).
			Order("id").Limit(batch).Pluck("id", &ids).Error; err != nil {
			return total, err
		}
		if len(ids) == 0 {
			return total, nil
		}
		var deleted int64
		err := s.tx(ctx, func(tx *gorm.DB) error {
			res := tx.Where("id IN ? AND billing_outcome <> ?", ids, OutcomePending).Delete(&Request{})
			deleted = res.RowsAffected
			return res.Error
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
