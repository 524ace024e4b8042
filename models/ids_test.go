package models

import (
	"testing"
	"time"
)

// TestRequestIDsOrderTheLog checks that the ids a store makes in a burst
// only grow, so the log's order by id is the order calls arrived in; that
// a time's smallest id comes before every id made from then on; that ids
// made after a log whose newest id is ahead of the clock come after it;
// and that two stores (two instances) never make the same id.
func TestRequestIDsOrderTheLog(t *testing.T) {
	s := sqliteStore(t)
	before := RequestIDAt(time.Now())
	prev := ""
	for range 50_000 {
		id := s.NewRequestID()
		if !LooksLikeRequestID(id) {
			t.Fatalf("%q is not a request id", id)
		}
		if id <= prev {
			t.Fatalf("%s made after %s", id, prev)
		}
		prev = id
	}
	if first := s.NewRequestID(); first <= before {
		t.Fatalf("an id made now, %s, sorts before its time's first id %s", first, before)
	}

	ahead := NewRequestIDAt(time.Now().Add(time.Hour))
	s.ids.after(ahead)
	if id := s.NewRequestID(); id <= ahead {
		t.Fatalf("an id made after a log whose newest id is an hour ahead is %s, before %s", id, ahead)
	}

	one, other := &idSource{}, &idSource{}
	seen := map[string]bool{}
	for range 10_000 {
		a, b := one.newID("req"), other.newID("req")
		if seen[a] || seen[b] || a == b {
			t.Fatalf("an id made twice: %s, %s", a, b)
		}
		seen[a], seen[b] = true, true
	}

	at := time.Now().Add(-24 * time.Hour)
	a, b := NewRequestIDAt(at), NewRequestIDAt(at)
	if a == b || a[:14] != RequestIDAt(at)[:14] || b[:14] != a[:14] {
		t.Fatalf("two ids made for %s: %s and %s", at, a, b)
	}
}

// TestCursorOfAPurgedRequest pages a log whose cursor row is deleted
// between two pages (a retention purge): the next page starts right after
// it, with nothing repeated or skipped.
func TestCursorOfAPurgedRequest(t *testing.T) {
	s := sqliteStore(t)
	ctx := t.Context()
	u, err := s.CreateAccount(ctx, "cursor@example.com", "long enough password")
	if err != nil {
		t.Fatal(err)
	}
	acct := u.AccountID
	var ids []string
	for range 7 {
		r := &Request{ID: s.NewRequestID(), AccountID: &acct, Method: "POST", Path: "/v1/chat/completions", Status: 200,
			BillingOutcome: OutcomeCharged, CreatedAt: time.Now().UTC()}
		if err := s.LogRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		ids = append([]string{r.ID}, ids...) // newest first
	}
	first, err := s.ListRequests(ctx, acct, RequestFilter{}, "", 3)
	if err != nil || first.Next != ids[2] {
		t.Fatalf("first page: next %q, %v; want %s", first.Next, err, ids[2])
	}
	if err := s.db.w.Exec("DELETE FROM requests WHERE id = ?", first.Next).Error; err != nil {
		t.Fatal(err)
	}
	second, err := s.ListRequests(ctx, acct, RequestFilter{}, first.Next, 3)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range second.Rows {
		got = append(got, r.ID)
	}
	if want := ids[3:6]; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("after the cursor's row was purged the next page is %v, want %v", got, want)
	}
}
