package models

import "context"

// CountRequests counts an account's requests that match f (its time range
// included) up to limit, and reports whether more match: the count stops
// at limit+1 rows of the index, so a busy account's log costs no more than
// that, however long it is.
func (s *Store) CountRequests(ctx context.Context, accountID string, f RequestFilter, limit int) (n int64, more bool, err error) {
	db := s.db.r.WithContext(ctx)
	matching := between(f.apply(ofAccount(db.Model(&Request{}).Select("1"), accountID)), f.From, f.To).Limit(limit + 1)
	if err := db.Table("(?) AS matching", matching).Count(&n).Error; err != nil {
		return 0, false, err
	}
	if n > int64(limit) {
		return int64(limit), true, nil
	}
	return n, false, nil
}
