package models_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"ttconsole/internal/seed"
	"ttconsole/internal/testenv"
	"ttconsole/models"
)

func TestParseUsageQuery(t *testing.T) {
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 14, 35, 0, 0, time.UTC)
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name           string
		query          string
		loc            *time.Location
		from, to       time.Time
		group, gran    string
		errorsOnFields []string
	}{
		{"the last 30 days by default, daily, by model", "", time.UTC,
			utc("2026-10-27T00:00:00Z"), utc("2026-11-26T00:00:00Z"), "model", "day", nil},
		{"from a time to now", "from=2026-11-24T16:00", time.UTC,
			utc("2026-11-24T16:00:00Z"), utc("2026-11-25T15:00:00Z"), "model", "hour", nil},
		{"dates include the whole last day", "from=2026-11-01&to=2026-11-02&group=key", time.UTC,
			utc("2026-11-01T00:00:00Z"), utc("2026-11-03T00:00:00Z"), "key", "hour", nil},
		{"dates are the zone's days", "from=2026-11-01&to=2026-11-30&group=day", tokyo,
			utc("2026-10-31T15:00:00Z"), utc("2026-11-30T15:00:00Z"), "day", "day", nil},
		{"wall-clock times round out to whole hours", "from=2026-11-24T15:20&to=2026-11-25T09:10&granularity=hour", tokyo,
			utc("2026-11-24T06:00:00Z"), utc("2026-11-25T01:00:00Z"), "model", "hour", nil},
		{"RFC 3339 times", "from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00%2B01:00&granularity=day", tokyo,
			utc("2026-11-20T00:00:00Z"), utc("2026-11-20T23:00:00Z"), "model", "day", nil},
		{"no from: the 30 days up to to", "to=2026-11-10", time.UTC,
			utc("2026-10-12T00:00:00Z"), utc("2026-11-11T00:00:00Z"), "model", "day", nil},
		{"a bad date", "from=yesterday", time.UTC, time.Time{}, time.Time{}, "", "", []string{"from"}},
		{"a bad end", "to=2026-13-01", time.UTC, time.Time{}, time.Time{}, "", "", []string{"to"}},
		{"the end before the start", "from=2026-11-10&to=2026-11-01", time.UTC, time.Time{}, time.Time{}, "", "", []string{"to"}},
		{"an unknown group", "group=colour", time.UTC, time.Time{}, time.Time{}, "", "", []string{"group"}},
		{"an unknown granularity", "granularity=week", time.UTC, time.Time{}, time.Time{}, "", "", []string{"granularity"}},
		{"hours over more than two weeks", "from=2026-10-01&to=2026-10-31&granularity=hour", time.UTC, time.Time{}, time.Time{}, "", "", []string{"granularity"}},
		{"more than a year", "from=2024-01-01&to=2026-01-01", time.UTC, time.Time{}, time.Time{}, "", "", []string{"from"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			q, err := models.ParseUsageQuery(v, tc.loc, now)
			if len(tc.errorsOnFields) > 0 {
				me, ok := err.(*models.Error)
				if !ok || me.Code != models.EINVALID || len(me.Fields) != len(tc.errorsOnFields) {
					t.Fatalf("error %v, want messages on %v", err, tc.errorsOnFields)
				}
				for _, f := range tc.errorsOnFields {
					if me.Fields[f] == "" {
						t.Fatalf("no message on %s: %v", f, me.Fields)
					}
				}
				if !q.To.After(q.From) {
					t.Fatalf("a refused query still holds a range: %s to %s", q.From, q.To)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !q.From.Equal(tc.from) || !q.To.Equal(tc.to) || q.Group != tc.group || q.Granularity != tc.gran {
				t.Fatalf("got %s to %s by %s per %s, want %s to %s by %s per %s", q.From.UTC(), q.To.UTC(), q.Group,
					q.Granularity, tc.from, tc.to, tc.group, tc.gran)
			}
		})
	}
}

// TestUsageReportCutsDaysInTheZone: a day in Tokyo runs from 15:00 UTC
// to 15:00 UTC, and its hours land in it, in the table and the chart.
func TestUsageReportCutsDaysInTheZone(t *testing.T) {
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	q, err := models.ParseUsageQuery(url.Values{"from": {"2026-11-01"}, "to": {"2026-11-02"}, "group": {"day"},
		"granularity": {"day"}}, tokyo, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	rows := []models.UsageRow{
		{Hour: at("2026-10-31T15:00:00Z"), UsageTotals: models.UsageTotals{Requests: 1, SpendMicros: 10}},
		{Hour: at("2026-11-01T14:00:00Z"), UsageTotals: models.UsageTotals{Requests: 2, SpendMicros: 20}},
		{Hour: at("2026-11-01T15:00:00Z"), UsageTotals: models.UsageTotals{Requests: 4, Errors: 1, SpendMicros: 40}},
	}
	rep := models.BuildUsageReport(q, rows)
	if len(rep.Periods) != 2 || len(rep.Groups) != 2 {
		t.Fatalf("%d periods, %d days: want 2 and 2", len(rep.Periods), len(rep.Groups))
	}
	if g := rep.Groups[0]; g.Value != "2026-11-01" || g.Requests != 3 || g.SpendMicros != 30 {
		t.Fatalf("first day %+v", g)
	}
	if g := rep.Groups[1]; g.Value != "2026-11-02" || g.Requests != 4 || g.Errors != 1 || g.SpendMicros != 40 {
		t.Fatalf("second day %+v", g)
	}
	if rep.Total.Requests != 7 || rep.Total.SpendMicros != 70 || rep.Periods[1].SpendMicros != 40 {
		t.Fatalf("total %+v, periods %+v", rep.Total, rep.Periods)
	}
}

// usageOfLog sums an account's request log as the roll-up counts it,
// read through the database's own hour of completed_at, and returns it
// with the roll-up, both keyed by hour, key and model: requests, errors,
// prompt and completion tokens, spend, then the requests of each final
// outcome (every outcome but pending, each a column of the roll-up).
func usageOfLog(t *testing.T, db *models.DB, account string) (log, rollup map[string][]int64) {
	t.Helper()
	outcomes := models.Outcomes[1:]
	read := func(q string) map[string][]int64 {
		rows, err := db.Writer().Raw(q, account).Rows()
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string][]int64{}
		for rows.Next() {
			var hour, key, model string
			v := make([]int64, 5+len(outcomes))
			dest := []any{&hour, &key, &model}
			for i := range v {
				dest = append(dest, &v[i])
			}
			if err := rows.Scan(dest...); err != nil {
				t.Fatal(err)
			}
			if slices.ContainsFunc(v, func(n int64) bool { return n != 0 }) {
				out[hour+"|"+key+"|"+model] = v
			}
		}
		return out
	}
	var byOutcome []string
	for _, o := range outcomes {
		byOutcome = append(byOutcome, "SUM(CASE WHEN billing_outcome = '"+o+"' THEN 1 ELSE 0 END)")
	}
	log = read(`SELECT substr(CAST(COALESCE(completed_at, created_at) AS TEXT), 1, 13), COALESCE(key_id, ''), model,
		COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), SUM(prompt_tokens), SUM(completion_tokens),
		SUM(charged_micros), ` + strings.Join(byOutcome, ", ") + `
		FROM requests WHERE account_id = ? AND billing_outcome <> 'pending'
		GROUP BY 1, 2, 3`)
	rollup = read(`SELECT hour_utc, key_id, model, requests, errors, prompt_tokens, completion_tokens, spend_micros, ` +
		strings.Join(outcomes, ", ") + ` FROM usage_hourly WHERE account_id = ?`)
	return log, rollup
}

func sameUsage(t *testing.T, want, got map[string][]int64) {
	t.Helper()
	if len(want) == 0 {
		t.Fatal("nothing to compare")
	}
	for k, w := range want {
		if !slices.Equal(got[k], w) {
			t.Errorf("%s: roll-up %v, want %v", k, got[k], w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: roll-up %v, want nothing", k, g)
		}
	}
}

// TestSeedFillsTheUsageRollup: a seeded history (WriteHistory) shows on
// the Usage page as it does on the Requests page: the roll-up holds
// exactly the seeded rows' counts, tokens and charges, by the hour they
// completed.
func TestSeedFillsTheUsageRollup(t *testing.T) {
	db := testenv.DB(t)
	store := models.NewStore(db)
	ctx := context.Background()
	u, err := store.CreateAccount(ctx, "seed@example.com", "long enough password")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, name := range []string{"a", "b"} {
		k, _, err := store.CreateAPIKey(ctx, u.AccountID, models.AdminCLI, models.KeyInput{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.ID)
	}
	// Twice over the same days, the second time more than one transaction's worth.
	for _, n := range []int{2000, 60_000} {
		if _, err := seed.Requests(ctx, store, u.AccountID, seed.Options{Requests: n, Span: 3 * 24 * time.Hour, KeyIDs: keys, Seed: uint64(n)}); err != nil {
			t.Fatal(err)
		}
	}
	log, rollup := usageOfLog(t, db, u.AccountID)
	sameUsage(t, log, rollup)
}

// TestUsageMigrationFillsFromLogAndLedger: migration 15 counts the
// history already in the log by the hour each request completed, and
// takes spend from the ledger's charges, a paid debt included; migration
// 21 moves the outcome into columns and keeps every sum, and its way back
// makes version 15's rows again.
func TestUsageMigrationFillsFromLogAndLedger(t *testing.T) {
	db, p := migratedTo(t, 14)
	ctx := context.Background()
	exec := func(q string, args ...any) {
		t.Helper()
		if err := db.Writer().Exec(q, args...).Error; err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	at := time.Date(2026, 10, 31, 23, 59, 58, 0, time.UTC)
	done := at.Add(3 * time.Second) // the next hour, and the next month
	exec(`INSERT INTO accounts (id, name, created_at) VALUES ('acc_1', 'a', ?)`, at)
	for _, r := range []struct {
		id, key, model, outcome string
		status                  int
		prompt, completion      int
		charged                 int64
		completed               *time.Time
	}{
		{"req_1", "key_1", "tt-chat-small", "charged", 200, 10, 20, 700, &done},
		{"req_2", "key_1", "tt-chat-small", "charged", 200, 5, 5, 300, &done},
		{"req_3", "key_2", "tt-chat-large", "not_charged_failed", 502, 9, 0, 0, &done},
		{"req_4", "", "", "not_charged_rejected", 401, 0, 0, 0, nil},
		{"req_5", "key_1", "tt-chat-small", "pending", 200, 0, 0, 0, nil},
	} {
		var key any
		if r.key != "" {
			key = r.key
		}
		exec(`INSERT INTO requests (id, account_id, key_id, method, path, model, status, prompt_tokens, completion_tokens,
			charged_micros, billing_outcome, created_at, completed_at) VALUES (?, 'acc_1', ?, 'POST', '/v1/chat/completions',
			?, ?, ?, ?, ?, ?, ?, ?)`, r.id, key, r.model, r.status, r.prompt, r.completion, r.charged, r.outcome, at, r.completed)
	}
	exec(`INSERT INTO ledger_entries (id, account_id, kind, amount_micros, balance_after_micros, request_id, memo, created_at)
		VALUES ('led_1', 'acc_1', 'charge', -700, 0, 'req_1', '', ?), ('led_2', 'acc_1', 'charge', -300, 0, 'req_2', '', ?),
		('led_3', 'acc_1', 'charge', -50, 0, NULL, 'debt', ?), ('led_4', 'acc_1', 'recharge', 5000, 0, NULL, '', ?)`,
		done, done, at, at)
	// Version 15's rows, per outcome: requests, errors, tokens, spend.
	read15 := func() map[string][]int64 {
		t.Helper()
		rows, err := db.Writer().Raw(`SELECT hour_utc, key_id, model, outcome, requests, errors, prompt_tokens,
			completion_tokens, spend_micros FROM usage_hourly WHERE account_id = 'acc_1'`).Rows()
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string][]int64{}
		for rows.Next() {
			var hour, key, model, outcome string
			v := make([]int64, 5)
			if err := rows.Scan(&hour, &key, &model, &outcome, &v[0], &v[1], &v[2], &v[3], &v[4]); err != nil {
				t.Fatal(err)
			}
			out[hour+"|"+key+"|"+model+"|"+outcome] = v
		}
		return out
	}
	v15 := map[string][]int64{
		"2026-11-01 00|key_1|tt-chat-small|charged":            {2, 0, 15, 25, 1000},
		"2026-11-01 00|key_2|tt-chat-large|not_charged_failed": {1, 1, 9, 0, 0},
		"2026-10-31 23|||not_charged_rejected":                 {1, 1, 0, 0, 0},
		"2026-10-31 23|||charged":                              {0, 0, 0, 0, 50},
	}
	if _, err := p.UpTo(ctx, 15); err != nil {
		t.Fatal(err)
	}
	sameUsage(t, v15, read15())

	// Version 21 sums each hour, key and model's outcomes into one row,
	// with the requests of each outcome in its column (charged,
	// charged_partial, rejected, failed, cancelled, expired, free).
	if _, err := p.UpTo(ctx, 21); err != nil {
		t.Fatal(err)
	}
	_, rollup := usageOfLog(t, db, "acc_1")
	sameUsage(t, map[string][]int64{
		"2026-11-01 00|key_1|tt-chat-small": {2, 0, 15, 25, 1000, 2, 0, 0, 0, 0, 0, 0},
		"2026-11-01 00|key_2|tt-chat-large": {1, 1, 9, 0, 0, 0, 0, 0, 1, 0, 0, 0},
		"2026-10-31 23||":                   {1, 1, 0, 0, 50, 0, 0, 1, 0, 0, 0, 0},
	}, rollup)
	if _, err := p.DownTo(ctx, 20); err != nil {
		t.Fatal(err)
	}
	sameUsage(t, v15, read15())
	if _, err := p.DownTo(ctx, 14); err != nil {
		t.Fatal(err)
	}
	if db.Writer().Migrator().HasTable("usage_hourly") {
		t.Fatal("the way back left usage_hourly")
	}
}
