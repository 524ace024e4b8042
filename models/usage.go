package models

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

// Usage groupings: what the Usage page's table has a line for and its
// chart a colour for.
const (
	UsageByModel = "model"
	UsageByKey   = "key"
	UsageByDay   = "day"
)

// Usage granularities: how long one period of the chart is.
const (
	UsageHourly = "hour"
	UsageDaily  = "day"
)

// Limits of a usage range: a year at most, and hourly periods for two
// weeks at most (336 bars).
const (
	MaxUsageDays       = 366
	MaxUsageHourlyDays = 14
)

// UsageQuery is what the Usage page and its CSV show: the account's usage
// in [From, To), whole hours, grouped by Group and cut into periods of
// Granularity; days begin at midnight in Zone.
type UsageQuery struct {
	From, To    time.Time
	Group       string
	Granularity string
	Zone        *time.Location
}

// ParseUsageQuery reads from, to, group and granularity (DESIGN §8) from
// a query string. from and to are dates (to includes its whole day) or
// times on the wall clock of loc (2026-11-25T14:00), or RFC 3339 times;
// a range is made of whole hours. Without either, the range is the 30
// days up to today, whole; without from, the 30 days up to to; without
// to, it ends with the current hour. Without a
// granularity, a range of two days or less is hourly. Bad values are field
// errors; the query returned then holds the defaults in their place.
func ParseUsageQuery(q url.Values, loc *time.Location, now time.Time) (UsageQuery, error) {
	if loc == nil {
		loc = time.UTC
	}
	fe := FieldErrors{}
	u := UsageQuery{Group: UsageByModel, Zone: loc}
	switch g := strings.TrimSpace(q.Get("group")); g {
	case "":
	case UsageByModel, UsageByKey, UsageByDay:
		u.Group = g
	default:
		fe.Add("group", "Group by model, key or day.")
	}
	gran := strings.TrimSpace(q.Get("granularity"))
	switch gran {
	case "", UsageHourly, UsageDaily:
	default:
		fe.Add("granularity", "Choose hour or day.")
		gran = ""
	}

	end := now.Truncate(time.Hour).Add(time.Hour)
	from, fromOK := parseUsageTime(q.Get("from"), loc, false)
	if !fromOK {
		fe.Add("from", "Use a date such as 2026-11-01, or a time such as 2026-11-01T14:00.")
	}
	to, toOK := parseUsageTime(q.Get("to"), loc, true)
	if !toOK {
		fe.Add("to", "Use a date such as 2026-11-30, or a time such as 2026-11-30T18:00.")
	}
	if from.IsZero() && to.IsZero() && fromOK && toOK {
		// The 30 days up to today, whole days.
		t := now.In(loc)
		to = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc).Truncate(time.Hour)
	}
	if to.IsZero() {
		to = end
	}
	if from.IsZero() {
		t := to.Add(-time.Nanosecond).In(loc)
		from = time.Date(t.Year(), t.Month(), t.Day()-29, 0, 0, 0, 0, loc).Truncate(time.Hour)
	}
	switch {
	case !to.After(from):
		if fromOK && toOK {
			fe.Add("to", "The end of the range must be after its start.")
		}
		from, to = end.Add(-30*24*time.Hour), end
	case to.Sub(from) > MaxUsageDays*24*time.Hour:
		fe.Add("from", "Choose a range of at most 366 days.")
		from = to.Add(-MaxUsageDays * 24 * time.Hour)
	}
	u.From, u.To = from, to
	switch {
	case gran == "" && to.Sub(from) <= 48*time.Hour:
		u.Granularity = UsageHourly
	case gran == "":
		u.Granularity = UsageDaily
	case gran == UsageHourly && to.Sub(from) > MaxUsageHourlyDays*24*time.Hour:
		fe.Add("granularity", "Hourly periods are for ranges of up to 14 days; choose day, or a shorter range.")
		u.Granularity = UsageDaily
	default:
		u.Granularity = gran
	}
	return u, fe.Err()
}

// parseUsageTime reads a range bound: the zero time for "", and false
// when s is not a time. A date is the start of that day in loc, or its
// end for the range's end; a time is rounded out to a whole hour.
func parseUsageTime(s string, loc *time.Location, end bool) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, true
	}
	if len(s) > 40 {
		return time.Time{}, false
	}
	round := func(t time.Time) time.Time {
		h := t.Truncate(time.Hour)
		if end && h.Before(t) {
			h = h.Add(time.Hour)
		}
		return h
	}
	if d, err := time.ParseInLocation("2006-01-02", s, loc); err == nil {
		if end {
			d = time.Date(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, 0, loc)
		}
		return round(d), true
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return round(t), true
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return round(t), true
		}
	}
	return time.Time{}, false
}

// UsageTotals are the numbers the Usage page shows for a period, a group
// or the whole range.
type UsageTotals struct {
	Requests         int64
	Errors           int64 // requests answered with a status of 400 or above
	PromptTokens     int64
	CompletionTokens int64
	SpendMicros      int64
}

func (t *UsageTotals) add(o UsageTotals) {
	t.Requests += o.Requests
	t.Errors += o.Errors
	t.PromptTokens += o.PromptTokens
	t.CompletionTokens += o.CompletionTokens
	t.SpendMicros += o.SpendMicros
}

// ErrorRate is the share of requests that were errors, 0 without any.
func (t UsageTotals) ErrorRate() float64 {
	if t.Requests == 0 {
		return 0
	}
	return float64(t.Errors) / float64(t.Requests)
}

// UsageRow is one hour of one group's usage, as the roll-up holds it.
type UsageRow struct {
	Hour  time.Time // the UTC hour the requests reached their outcome in
	Group string    // the model or the key's id ("" for none); "" when grouped by day
	UsageTotals
}

// UsageRows returns the account's usage in q's range, per hour and per
// value of q's grouping (none for day: the page makes the days), from the
// roll-up: a few thousand rows for a month whatever the traffic. The rows
// are read through database/sql, not GORM, whose scan by reflection took
// as long as the query; and on SQLite under a context that cannot be
// cancelled, because the driver starts a goroutine for every row of a
// query that can (the query is a few milliseconds).
func (s *Store) UsageRows(ctx context.Context, accountID string, q UsageQuery) ([]UsageRow, error) {
	col := "''"
	switch q.Group {
	case UsageByModel:
		col = "model"
	case UsageByKey:
		col = "key_id"
	}
	group := "hour_utc"
	if col != "''" {
		group += ", " + col
	}
	text := `SELECT hour_utc, ` + col + `, SUM(requests), SUM(errors), SUM(prompt_tokens), SUM(completion_tokens),
		SUM(spend_micros) FROM usage_hourly WHERE account_id = ? AND hour_utc >= ? AND hour_utc < ? GROUP BY ` + group
	db, err := s.db.r.DB()
	if err != nil {
		return nil, err
	}
	text = numberedIf(s.db.Postgres, text)
	if !s.db.Postgres {
		ctx = context.WithoutCancel(ctx)
	}
	rows, err := db.QueryContext(ctx, text, accountID, usageHour(q.From), usageHour(q.To))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var (
		out       []UsageRow
		hour, grp string
		last      string
		at        time.Time
	)
	for rows.Next() {
		var r UsageRow
		if err := rows.Scan(&hour, &grp, &r.Requests, &r.Errors, &r.PromptTokens, &r.CompletionTokens, &r.SpendMicros); err != nil {
			return nil, err
		}
		if hour != last { // rows come an hour at a time
			if at, err = time.Parse(usageHourLayout, hour); err != nil {
				continue // not a row this code wrote
			}
			last = hour
		}
		r.Hour, r.Group = at, grp
		out = append(out, r)
	}
	return out, rows.Err()
}

// UsagePeriod is one period of the chart: its totals, and each group's.
type UsagePeriod struct {
	Start, End time.Time
	Groups     map[string]UsageTotals
	UsageTotals
}

// UsageGroup is one line of the Usage table: a model, a key's id, or a
// day ("2026-11-25", from Start to End).
type UsageGroup struct {
	Value      string
	Start, End time.Time // a day's range (grouped by day)
	UsageTotals
}

// UsageReport is a range's usage laid out for the page: its periods, its
// groups (most spend first; by day, in order) and its totals.
type UsageReport struct {
	Periods []UsagePeriod
	Groups  []UsageGroup
	Total   UsageTotals
}

// Periods cuts q's range into its periods: hours, or days that begin at
// midnight in q's zone (the first and last cut by the range).
func (q UsageQuery) Periods() []UsagePeriod { return q.periods(q.Granularity) }

func (q UsageQuery) periods(gran string) []UsagePeriod {
	loc := q.Zone
	if loc == nil {
		loc = time.UTC
	}
	var out []UsagePeriod
	for start := q.From; start.Before(q.To); {
		var end time.Time
		if gran == UsageHourly {
			end = start.Add(time.Hour)
		} else {
			t := start.In(loc)
			end = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
		}
		if end.After(q.To) {
			end = q.To
		}
		out = append(out, UsagePeriod{Start: start, End: end})
		start = end
	}
	return out
}

// BuildUsageReport lays out rows, as UsageRows returned them for q.
func BuildUsageReport(q UsageQuery, rows []UsageRow) UsageReport {
	rep := UsageReport{Periods: q.Periods()}
	days := q.periods(UsageDaily)
	// in returns the index of the period holding hour h (every row is
	// within the range, but a zone whose midnight is not on the hour puts
	// an hour in the day where it begins).
	in := func(ps []UsagePeriod, h time.Time) int {
		return max(0, sort.Search(len(ps), func(i int) bool { return ps[i].Start.After(h) })-1)
	}
	byGroup := map[string]*UsageGroup{}
	if q.Group == UsageByDay {
		for _, d := range days {
			rep.Groups = append(rep.Groups, UsageGroup{Value: d.Start.In(q.zone()).Format("2006-01-02"), Start: d.Start, End: d.End})
		}
	}
	for _, r := range rows {
		if len(rep.Periods) == 0 {
			break
		}
		value := r.Group
		if q.Group == UsageByDay {
			d := &rep.Groups[in(days, r.Hour)]
			value = d.Value
			d.add(r.UsageTotals)
		} else {
			g := byGroup[value]
			if g == nil {
				g = &UsageGroup{Value: value}
				byGroup[value] = g
			}
			g.add(r.UsageTotals)
		}
		p := &rep.Periods[in(rep.Periods, r.Hour)]
		if p.Groups == nil {
			p.Groups = map[string]UsageTotals{}
		}
		t := p.Groups[value]
		t.add(r.UsageTotals)
		p.Groups[value] = t
		p.add(r.UsageTotals)
		rep.Total.add(r.UsageTotals)
	}
	if q.Group != UsageByDay {
		for _, g := range byGroup {
			rep.Groups = append(rep.Groups, *g)
		}
		slices.SortFunc(rep.Groups, func(x, y UsageGroup) int {
			return cmp.Or(cmp.Compare(y.SpendMicros, x.SpendMicros), cmp.Compare(y.Requests, x.Requests),
				cmp.Compare(x.Value, y.Value))
		})
	}
	return rep
}

func (q UsageQuery) zone() *time.Location {
	if q.Zone == nil {
		return time.UTC
	}
	return q.Zone
}

// UsageInvariant checks an account's usage roll-up against the two records
// it sums, read apart and summed here: every request of the log with a
// final outcome counted once, in the UTC hour it completed, under its key
// and model, in its outcome's column; and every ledger charge in the hour
// it was made, under its request's key and model (none for a late charge
// paid from a recharge). It returns nil when they agree to the request and
// the micro-dollar, otherwise the rows that differ (the first few).
func (s *Store) UsageInvariant(ctx context.Context, accountID string) error {
	want := map[usageKey]usageSum{}
	db := s.db.sqlDB()

	rows, err := db.QueryContext(ctx, numberedIf(s.db.Postgres, `SELECT completed_at, COALESCE(key_id, ''), model,
		billing_outcome, status, prompt_tokens, completion_tokens FROM requests
		WHERE account_id = ? AND billing_outcome <> '`+OutcomePending+`'`), accountID)
	if err != nil {
		return err
	}
	for rows.Next() {
		var at sql.NullTime
		k := usageKey{account: accountID}
		var outcome string
		var status int
		var prompt, completion int64
		if err := rows.Scan(&at, &k.key, &k.model, &outcome, &status, &prompt, &completion); err != nil {
			rows.Close()
			return err
		}
		if !at.Valid {
			rows.Close()
			return fmt.Errorf("a request with the outcome %s has no completion time", outcome)
		}
		k.hour = usageHour(at.Time)
		c := want[k]
		c.add(oneRequest(outcome, status, prompt, completion, 0))
		want[k] = c
	}
	if err := rows.Close(); err != nil {
		return err
	}

	rows, err = db.QueryContext(ctx, numberedIf(s.db.Postgres, `SELECT l.created_at, COALESCE(r.key_id, ''),
		COALESCE(r.model, ''), l.amount_micros
		FROM ledger_entries AS l LEFT JOIN requests AS r ON r.id = l.request_id
		WHERE l.account_id = ? AND l.kind = '`+LedgerCharge+`'`), accountID)
	if err != nil {
		return err
	}
	for rows.Next() {
		var at time.Time
		k := usageKey{account: accountID}
		var amount int64
		if err := rows.Scan(&at, &k.key, &k.model, &amount); err != nil {
			rows.Close()
			return err
		}
		k.hour = usageHour(at)
		c := want[k]
		c.SpendMicros -= amount
		want[k] = c
	}
	if err := rows.Close(); err != nil {
		return err
	}

	got := map[usageKey]usageSum{}
	rows, err = db.QueryContext(ctx, numberedIf(s.db.Postgres, `SELECT hour_utc, key_id, model, requests, errors,
		prompt_tokens, completion_tokens, spend_micros, `+strings.Join(usageOutcomes[:], ", ")+`
		FROM usage_hourly WHERE account_id = ?`), accountID)
	if err != nil {
		return err
	}
	for rows.Next() {
		k := usageKey{account: accountID}
		var c usageSum
		dest := []any{&k.hour, &k.key, &k.model, &c.Requests, &c.Errors, &c.PromptTokens, &c.CompletionTokens,
			&c.SpendMicros}
		for i := range c.outcomes {
			dest = append(dest, &c.outcomes[i])
		}
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return err
		}
		if c != (usageSum{}) { // a row a late charge emptied
			got[k] = c
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}

	var errs []error
	for k, w := range want {
		if g := got[k]; g != w && len(errs) < 10 {
			errs = append(errs, fmt.Errorf("usage of %s %q %q: roll-up %v, log and ledger %v", k.hour, k.key, k.model, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok && len(errs) < 10 {
			errs = append(errs, fmt.Errorf("usage of %s %q %q: roll-up %v, nothing in the log or the ledger", k.hour, k.key, k.model, g))
		}
	}
	return errors.Join(errs...)
}

// String is a row's counts in words, for a report of rows that differ.
func (t usageSum) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "requests %d (", t.Requests)
	sep := ""
	for i, n := range t.outcomes {
		if n != 0 {
			fmt.Fprintf(&b, "%s%s %d", sep, usageOutcomes[i], n)
			sep = ", "
		}
	}
	fmt.Fprintf(&b, "), errors %d, tokens %d + %d, spend %d µ$", t.Errors, t.PromptTokens, t.CompletionTokens, t.SpendMicros)
	return b.String()
}

// numberedIf is text with its ? numbered for PostgreSQL when postgres.
func numberedIf(postgres bool, text string) string {
	if postgres {
		return numbered(text)
	}
	return text
}
