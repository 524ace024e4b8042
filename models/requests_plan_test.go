package models

import (
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"
)

// explain returns SQLite's query plan for q, one line per step.
func explain(t *testing.T, s *Store, q *gorm.DB) string {
	t.Helper()
	stmt := q.Find(&[]Request{}).Statement
	rows, err := s.db.sqlDB().Query("EXPLAIN QUERY PLAN "+stmt.SQL.String(), stmt.Vars...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return strings.Join(plan, "; ")
}

// TestRequestFiltersWalkTheirIndex checks that every filter of the
// Requests page is one walk of its own index in id order, no table scan
// and no sort: what keeps the thousandth page of a ten-million-row log as
// fast as the first.
func TestRequestFiltersWalkTheirIndex(t *testing.T) {
	s := sqliteStore(t)
	dry := s.db.r.Session(&gorm.Session{DryRun: true})
	cursor := RequestIDAt(time.Now())
	for _, tc := range []struct {
		name  string
		f     RequestFilter
		index string
	}{
		{"no filter", RequestFilter{}, "requests_account"},
		{"status class", RequestFilter{StatusClass: 4}, "requests_account_status_class"},
		{"status code", RequestFilter{Status: 429}, "requests_account_status_class"},
		{"error type", RequestFilter{Type: "rate_limited"}, "requests_account_error_type"},
		{"key", RequestFilter{KeyID: "key_x"}, "requests_account_key"},
		{"model", RequestFilter{Model: "tt-chat-small"}, "requests_account_model"},
		{"outcome", RequestFilter{Outcome: OutcomeCharged}, "requests_account_outcome"},
		{"outcome pending", RequestFilter{Outcome: OutcomePending}, "requests_account_outcome"},
		{"one day", RequestFilter{From: time.Now().Add(-24 * time.Hour), To: time.Now()}, "requests_account"},
	} {
		for _, c := range []string{"", cursor} {
			plan := explain(t, s, s.listQuery(dry, "acct_x", tc.f, c, 50))
			if !strings.Contains(plan, "INDEX "+tc.index+" (") || strings.Contains(plan, "TEMP B-TREE") {
				t.Errorf("%s (cursor %q): plan %q, want a walk of %s without a sort", tc.name, c, plan, tc.index)
			}
		}
	}

	for name, q := range map[string]*gorm.DB{
		"the overview's latest failures": newestFirst(ofAccount(dry.Model(&Request{}).Select(listColumns), "acct_x").
			Where("status / 100 = ?", 5)).Limit(10),
		"the reaper's open holds": dry.Model(&Request{}).
			Where("hold_status = 'open' AND hold_expires_at < ?", time.Now()),
	} {
		plan := explain(t, s, q)
		if strings.Contains(plan, "SCAN requests") && !strings.Contains(plan, "INDEX") {
			t.Errorf("%s: plan %q scans the table", name, plan)
		}
	}
}
