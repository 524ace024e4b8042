package models

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"gorm.io/gorm"
)

// ErrorTypes are the error types of the platform's contract, in the order
// the Requests page offers them as filters.
var ErrorTypes = []string{
	"invalid_request", "request_too_large", "unauthorized", "billing_shortfall", "api_key_quota_exceeded",
	"model_not_allowed", "ip_not_allowed", "not_found", "rate_limited",
	"upstream_error", "service_unavailable", "upstream_timeout", "internal_error",
}

// Outcomes are the billing outcomes, in the order the page offers them.
var Outcomes = []string{
	OutcomePending, OutcomeCharged, OutcomeChargedPartial, OutcomeNotChargedRejected,
	OutcomeNotChargedFailed, OutcomeNotChargedCancel, OutcomeNotChargedExpired, OutcomeNotChargedFree,
}

// RequestFilter narrows an account's request log. Zero fields match
// everything. From and To bound the time the request arrived, From
// inclusive and To exclusive; because ids are ULIDs made on arrival, the
// bounds become bounds of the log's order, its ids,
// and every filter stays an index range.
type RequestFilter struct {
	StatusClass int // 2 for 2xx, 4 for 4xx …; 0 = any
	Status      int // an exact code; 0 = any
	Type        string
	KeyID       string
	Model       string
	Outcome     string
	From, To    time.Time
}

// MaxFilterLen bounds a typed filter value.
const MaxFilterLen = 200

// ParseRequestFilter reads the filters of DESIGN §8 from a query string:
// status (2xx, 4xx, 5xx or a code), type, key, model, outcome, from and to
// (RFC 3339, or YYYY-MM-DD: a date-only "to" includes that whole day, UTC).
// Bad values are field errors; the filter returned then holds the good ones.
func ParseRequestFilter(q url.Values) (RequestFilter, error) {
	var f RequestFilter
	fe := FieldErrors{}
	if s := strings.TrimSpace(q.Get("status")); s != "" {
		switch {
		case len(s) == 3 && s[0] >= '1' && s[0] <= '5' && strings.EqualFold(s[1:], "xx"):
			f.StatusClass = int(s[0] - '0')
		default:
			n, err := strconv.Atoi(s)
			if err != nil || n < 100 || n > 599 {
				fe.Add("status", "Use 2xx, 4xx, 5xx or an HTTP status code such as 429.")
			} else {
				f.Status = n
			}
		}
	}
	for _, p := range []struct {
		name string
		dst  *string
	}{{"type", &f.Type}, {"key", &f.KeyID}, {"model", &f.Model}} {
		s := strings.TrimSpace(q.Get(p.name))
		if len(s) > MaxFilterLen {
			fe.Add(p.name, "Use at most 200 characters.")
			continue
		}
		*p.dst = s
	}
	if s := strings.TrimSpace(q.Get("outcome")); s != "" {
		if OutcomeRule(s) == "" {
			fe.Add("outcome", "Choose one of the billing outcomes in the list.")
		} else {
			f.Outcome = s
		}
	}
	f.From, f.To = parseFilterRange(q, fe)
	return f, fe.Err()
}

// parseFilterRange reads a filter's from and to, each a field error when
// bad; a to that is not after from is one too, and left out.
func parseFilterRange(q url.Values, fe FieldErrors) (from, to time.Time) {
	var err error
	if from, err = parseFilterTime(q.Get("from"), false); err != nil {
		fe.Add("from", err.Error())
	}
	if to, err = parseFilterTime(q.Get("to"), true); err != nil {
		fe.Add("to", err.Error())
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		fe.Add("to", "The end of the range must be after its start.")
		to = time.Time{}
	}
	return from, to
}

func parseFilterTime(s string, end bool) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02T15:04", s); err == nil { // <input type=datetime-local>, read as UTC
		return t, nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, errors.New("Use a date (2026-11-25) or an RFC 3339 time (2026-11-25T14:00:00Z).")
	}
	if end {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}

// Values returns the filter as a query string, the inverse of
// ParseRequestFilter, so links and the CSV export keep the same set.
func (f RequestFilter) Values() url.Values {
	v := url.Values{}
	switch {
	case f.Status != 0:
		v.Set("status", strconv.Itoa(f.Status))
	case f.StatusClass != 0:
		v.Set("status", strconv.Itoa(f.StatusClass)+"xx")
	}
	for name, val := range map[string]string{"type": f.Type, "key": f.KeyID, "model": f.Model, "outcome": f.Outcome} {
		if val != "" {
			v.Set(name, val)
		}
	}
	if !f.From.IsZero() {
		v.Set("from", f.From.UTC().Format(time.RFC3339))
	}
	if !f.To.IsZero() {
		v.Set("to", f.To.UTC().Format(time.RFC3339))
	}
	return v
}

// Empty reports whether the filter matches every request.
func (f RequestFilter) Empty() bool { return f == RequestFilter{} }

// RequestIDAt is the smallest request id that can be made at t: ids made
// at t or later sort at or after it.
func RequestIDAt(t time.Time) string {
	var u ulid.ULID
	if err := u.SetTime(ulid.Timestamp(t)); err != nil {
		return "req_"
	}
	return "req_" + u.String()
}

// LooksLikeRequestID reports whether s has the shape of a request id.
func LooksLikeRequestID(s string) bool { return looksLikeID("req_", s) }

// looksLikeID reports whether s is prefix and a ULID, as NewID makes ids.
func looksLikeID(prefix, s string) bool {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok || len(rest) != ulid.EncodedSize {
		return false
	}
	_, err := ulid.ParseStrict(rest)
	return err == nil
}

// apply adds the filter's conditions, but not its time range, to q.
func (f RequestFilter) apply(q *gorm.DB) *gorm.DB {
	if f.StatusClass != 0 {
		q = q.Where("status / 100 = ?", f.StatusClass) // matches the expression index
	}
	if f.Status != 0 {
		q = q.Where("status / 100 = ? AND status = ?", f.Status/100, f.Status) // the class's index, then the code
	}
	if f.Type != "" {
		q = q.Where("error_type = ?", f.Type)
	}
	if f.KeyID != "" {
		q = q.Where("key_id = ?", f.KeyID)
	}
	if f.Model != "" {
		q = q.Where("model = ?", f.Model)
	}
	if f.Outcome != "" {
		q = q.Where("billing_outcome = ?", f.Outcome)
	}
	return q
}

// between limits q to requests made in [from, to); zero bounds are open.
func between(q *gorm.DB, from, to time.Time) *gorm.DB {
	return logRange(q, from, to, "")
}

// timeID is the smallest id made at t or later, "" for the zero time.
func timeID(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return RequestIDAt(t)
}

// ofAccount limits q to accountID's requests.
func ofAccount(q *gorm.DB, accountID string) *gorm.DB {
	return q.Where("account_id = ?", accountID)
}

// newestFirst orders q's requests as the log does, newest first.
func newestFirst(q *gorm.DB) *gorm.DB { return q.Order("id DESC") }

// logRange limits q to requests made in [from, to) (zero times are open
// ends) and, given a cursor (a request id), older than it. Each end must
// be one condition: given two upper bounds (the range's end and a cursor)
// the database seeks to the first it is given and only filters on the
// other, walking every row in between, so the tighter of two bounds is
// picked before it reaches the query.
func logRange(q *gorm.DB, from, to time.Time, cursor string) *gorm.DB {
	return idRange(q, timeID(from), earlierID(timeID(to), cursor))
}

// idRange limits q to ids in [lo, hi); "" is an open end.
func idRange(q *gorm.DB, lo, hi string) *gorm.DB {
	if lo != "" {
		q = q.Where("id >= ?", lo)
	}
	if hi != "" {
		q = q.Where("id < ?", hi)
	}
	return q
}

// listQuery selects a page of ListRequests, with one row more than the
// page to tell whether another follows.
func (s *Store) listQuery(db *gorm.DB, accountID string, f RequestFilter, cursor string, limit int) *gorm.DB {
	q := ofAccount(db.Model(&Request{}).Select(listColumns), accountID)
	return newestFirst(logRange(f.apply(q), f.From, f.To, cursor)).Limit(limit + 1)
}

// earlierID is the tighter of two upper bounds; "" is an open bound.
func earlierID(a, b string) string {
	if a == "" || (b != "" && b < a) {
		return b
	}
	return a
}

// RequestPage is one page of the request log, newest first. Next is the
// cursor of the following page, "" on the last.
type RequestPage struct {
	Rows []Request
	Next string
}

// ListRequests returns up to limit requests of an account that match f,
// newest first, older than the request id cursor ("" for the first page).
// Pages are keyset pages: a cursor is the last id shown, so rows arriving
// meanwhile (always newer) never shift, duplicate or hide older ones, and
// the 1000th page costs what the first does.
func (s *Store) ListRequests(ctx context.Context, accountID string, f RequestFilter, cursor string, limit int) (*RequestPage, error) {
	var rows []Request
	if err := s.listQuery(s.db.r.WithContext(ctx), accountID, f, cursor, limit).Find(&rows).Error; err != nil {
		return nil, err
	}
	p := &RequestPage{Rows: rows}
	if len(rows) > limit {
		p.Rows = rows[:limit]
		p.Next = rows[limit-1].ID
	}
	return p, nil
}

// StatusBucket counts requests by status class in [Start, End).
type StatusBucket struct {
	Start, End time.Time
	Counts     [6]int64 // by class: Counts[2] is 2xx … Counts[5] is 5xx; Counts[0] holds the rest
}

// Total is every request in the bucket.
func (b StatusBucket) Total() int64 {
	var n int64
	for _, c := range b.Counts {
		n += c
	}
	return n
}

// ChartClasses are the status classes the chart counts: the gateway
// answers 2xx, 4xx or 5xx.
var ChartClasses = []int{2, 4, 5}

// RequestStatusChart counts an account's requests matching f by status
// class in n equal buckets over [from, to). Each count is one range of the
// status-class index (the account, status / 100, then the log's order),
// counted without reading a row, so
// the chart costs the same on the first page and the thousandth, and
// grows with the rows in the range rather than with the whole log.
func (s *Store) RequestStatusChart(ctx context.Context, accountID string, f RequestFilter, from, to time.Time, n int) ([]StatusBucket, error) {
	if n < 1 || !to.After(from) {
		return nil, nil
	}
	step := to.Sub(from) / time.Duration(n)
	out := make([]StatusBucket, n)
	for i := range out {
		b := &out[i]
		b.Start = from.Add(time.Duration(i) * step)
		b.End = b.Start.Add(step)
		if i == n-1 {
			b.End = to
		}
		for _, class := range ChartClasses {
			if (f.StatusClass != 0 && f.StatusClass != class) || (f.Status != 0 && f.Status/100 != class) {
				continue
			}
			q := ofAccount(s.db.r.WithContext(ctx).Model(&Request{}), accountID).Where("status / 100 = ?", class)
			g := f
			g.StatusClass = 0
			if err := between(g.apply(q), b.Start, b.End).Count(&b.Counts[class]).Error; err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// DayStat is one UTC day of an account's traffic.
type DayStat struct {
	Day      time.Time
	Requests int64
	Errors   int64 // status 400 and above
}

// RequestDays returns the account's requests and errors for each of the
// last days UTC days up to and including now's, oldest first. Each figure
// is an index-only count over the day's id range, so a busy account's
// month costs index pages, not its rows.
func (s *Store) RequestDays(ctx context.Context, accountID string, days int, now time.Time) ([]DayStat, error) {
	today := now.UTC().Truncate(24 * time.Hour)
	out := make([]DayStat, days)
	for i := range out {
		d := &out[i]
		d.Day = today.AddDate(0, 0, i-days+1)
		end := d.Day.AddDate(0, 0, 1)
		q := ofAccount(s.db.r.WithContext(ctx).Model(&Request{}), accountID)
		if err := between(q, d.Day, end).Count(&d.Requests).Error; err != nil {
			return nil, err
		}
		if d.Requests == 0 {
			continue
		}
		for _, class := range []int{4, 5} {
			var n int64
			q := ofAccount(s.db.r.WithContext(ctx).Model(&Request{}), accountID).Where("status / 100 = ?", class)
			if err := between(q, d.Day, end).Count(&n).Error; err != nil {
				return nil, err
			}
			d.Errors += n
		}
	}
	return out, nil
}

// LatestFailed returns an account's n newest requests with a 4xx or 5xx
// status, newest first: one index walk per class, merged.
func (s *Store) LatestFailed(ctx context.Context, accountID string, n int) ([]Request, error) {
	var all []Request
	for _, class := range []int{4, 5} {
		var rows []Request
		q := ofAccount(s.db.r.WithContext(ctx).Model(&Request{}).Select(listColumns), accountID).
			Where("status / 100 = ?", class)
		err := newestFirst(q).Limit(n).Find(&rows).Error
		if err != nil {
			return nil, err
		}
		all = append(all, rows...)
	}
	// Merge the two newest-first lists.
	for i := 1; i < len(all); i++ {
		for j := i; j > 0 && all[j].ID > all[j-1].ID; j-- {
			all[j], all[j-1] = all[j-1], all[j]
		}
	}
	if len(all) > n {
		all = all[:n]
	}
	return all, nil
}

// RequestByID returns the request with an id, whoever's it is: what
// support finds from the X-TT-Request-ID a customer quotes. The console
// and the API read requests with RequestOf, which keeps accounts apart.
func (s *Store) RequestByID(ctx context.Context, id string) (*Request, error) {
	var rows []Request
	if err := s.db.r.WithContext(ctx).Where("id = ?", id).Limit(1).Find(&rows).Error; err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, ErrNotFound
	}
	return &rows[0], nil
}

// HasRequests reports whether an account has any request at all, to tell
// a new account's empty log from a filter that matched nothing.
func (s *Store) HasRequests(ctx context.Context, accountID string) (bool, error) {
	var ids []string
	err := ofAccount(s.db.r.WithContext(ctx).Model(&Request{}), accountID).Limit(1).Pluck("id", &ids).Error
	return len(ids) > 0, err
}

// RequestLedger returns the ledger entries a request of the account caused,
// oldest first.
func (s *Store) RequestLedger(ctx context.Context, accountID, requestID string) ([]LedgerEntry, error) {
	var out []LedgerEntry
	err := s.db.r.WithContext(ctx).Where("request_id = ? AND account_id = ?", requestID, accountID).
		Order("id").Find(&out).Error
	return out, err
}

// KeyLabel is how the Requests page names a key: its name and display
// prefix, never its secret.
type KeyLabel struct {
	ID      string
	Name    string
	Display string // sk-tt-abcd…wxyz
}

// RequestKeyLabels returns the labels of every key of an account, by id.
// An account has a handful of keys, so one small read serves a whole page
// or a whole export without a join per row.
func (s *Store) RequestKeyLabels(ctx context.Context, accountID string) (map[string]KeyLabel, error) {
	var rows []struct{ ID, Name, Prefix, Last4 string }
	err := s.db.r.WithContext(ctx).Table("api_keys").Select("id, name, prefix, last4").
		Where("account_id = ?", accountID).Order("id").Scan(&rows).Error
	if err != nil {
		return nil, err
	}
	out := make(map[string]KeyLabel, len(rows))
	for _, r := range rows {
		out[r.ID] = KeyLabel{ID: r.ID, Name: r.Name, Display: r.Prefix + "…" + r.Last4}
	}
	return out, nil
}
