package models

import (
	"context"
	"time"
)

// KeyUsage is a key's month-to-date spend and the holds of its calls
// still running, in micro-dollars.
type KeyUsage struct {
	SpentMicros int64
	HeldMicros  int64
}

// Used is what counts against the key's monthly limit.
func (u KeyUsage) Used() int64 { return u.SpentMicros + u.HeldMicros }

type keyUsageRow struct {
	KeyID       string
	SpentMicros int64
	HeldMicros  int64
}

// KeyMonthUsage returns a key's spend and open holds in the calendar month
// (UTC) of month. A month without calls is zeros. The gateway writes these
// figures; the console only reads them.
func (s *Store) KeyMonthUsage(ctx context.Context, keyID string, month time.Time) (spent, held int64, err error) {
	u, err := s.KeyMonthUsages(ctx, []string{keyID}, month)
	if err != nil {
		return 0, 0, err
	}
	return u[keyID].SpentMicros, u[keyID].HeldMicros, nil
}

// KeyMonthUsages returns the usage of several keys in one query, for the
// key list. Keys without calls that month are missing from the map.
func (s *Store) KeyMonthUsages(ctx context.Context, keyIDs []string, month time.Time) (map[string]KeyUsage, error) {
	out := make(map[string]KeyUsage, len(keyIDs))
	if len(keyIDs) == 0 {
		return out, nil
	}
	var rows []keyUsageRow
	err := s.db.r.WithContext(ctx).Table("key_month_usage").
		Select("key_id, spent_micros, held_micros").
		Where("key_id IN ? AND month = ?", keyIDs, MonthOf(month)).Scan(&rows).Error
	for _, r := range rows {
		out[r.KeyID] = KeyUsage{SpentMicros: r.SpentMicros, HeldMicros: r.HeldMicros}
	}
	return out, err
}

// keyMonthStart is 00:00 UTC on the first day of t's month.
func keyMonthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// MonthlyReset is when a monthly limit starts again: 00:00 UTC on the
// first day of the next month.
func MonthlyReset(now time.Time) time.Time { return keyMonthStart(now).AddDate(0, 1, 0) }

// ProjectLimitReached says when a key using used micro-dollars so far this
// month reaches limit, if it keeps the same pace. ok is false when it
// will not before the month resets, or there is no pace to go by yet.
// This is an estimate shown to people, so float arithmetic is fine here;
// no money is computed with it.
func ProjectLimitReached(used, limit int64, now time.Time) (at time.Time, ok bool) {
	now = now.UTC()
	start := keyMonthStart(now)
	elapsed := now.Sub(start)
	if used <= 0 || limit <= 0 || elapsed <= 0 {
		return time.Time{}, false
	}
	if used >= limit {
		return now, true
	}
	at = start.Add(time.Duration(float64(elapsed) * (float64(limit) / float64(used))))
	if !at.Before(MonthlyReset(now)) {
		return time.Time{}, false
	}
	return at, true
}
