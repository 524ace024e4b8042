package models

import (
	"testing"
	"time"
)

// TestRequestIDsPlaceTheLog checks that request ids and their places in
// the log, made in a burst, both only grow, so the log's order by place is
// the ids' order; that a time's smallest id places before every id made
// from then on; and that ids made after the log's newest place, whatever
// the clock says, come after it.
func TestRequestIDsPlaceTheLog(t *testing.T) {
	before := RequestSeq(RequestIDAt(time.Now()))
	prev, prevSeq := "", int64(0)
	for range 50_000 {
		id := NewRequestID()
		seq := RequestSeq(id)
		if !LooksLikeRequestID(id) || seq == 0 {
			t.Fatalf("%q is not a request id with a place", id)
		}
		if id <= prev || seq <= prevSeq {
			t.Fatalf("%s (place %d) made after %s (place %d)", id, seq, prev, prevSeq)
		}
		if seq>>seqCountBits != RequestSeq(RequestIDAt(time.UnixMilli(seq>>seqCountBits)))>>seqCountBits {
			t.Fatalf("%s: its place is not in its millisecond", id)
		}
		prev, prevSeq = id, seq
	}
	if first := RequestSeq(NewRequestID()); first <= before {
		t.Fatalf("an id made now placed at %d, before its time's first place %d", first, before)
	}

	ahead := RequestSeq(RequestIDAt(time.Now().Add(time.Hour))) | 5
	requestIDs.Lock()
	saved := requestIDs.ms
	requestIDs.Unlock()
	defer func() { // the rest of the package's tests make ids of now
		requestIDs.Lock()
		requestIDs.ms, requestIDs.count = saved+1, 0
		requestIDs.Unlock()
	}()
	keepRequestIDsAfter(ahead)
	if seq := RequestSeq(NewRequestID()); seq <= ahead {
		t.Fatalf("an id made after a log whose newest place is an hour ahead placed at %d, before %d", seq, ahead)
	}

	at := time.Now().Add(-24 * time.Hour)
	a, b := NewRequestIDAt(at), NewRequestIDAt(at)
	if a == b || RequestSeq(a) == RequestSeq(b) || RequestSeq(a)>>seqCountBits != RequestSeq(RequestIDAt(at))>>seqCountBits {
		t.Fatalf("two ids made for %s: %s and %s", at, a, b)
	}
	for _, bad := range []string{"", "req_", "key_01J00000000000000000000000", "req_not-a-ulid-at-all-000000"} {
		if RequestSeq(bad) != 0 {
			t.Errorf("RequestSeq(%q) = %d, want 0", bad, RequestSeq(bad))
		}
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
		r := &Request{ID: NewRequestID(), AccountID: &acct, Method: "POST", Path: "/v1/chat/completions", Status: 200,
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
	if err := s.db.W.Exec("DELETE FROM requests WHERE id = ?", first.Next).Error; err != nil {
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
