package models_test

import (
	"context"
	"errors"
	"math/rand"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"ttconsole/internal/testenv"
	"ttconsole/migrations"
	"ttconsole/models"
)

// oldID is a request id made at t, as the gateway would have made it then.
func oldID(t time.Time, rng *rand.Rand) string {
	return "req_" + ulid.MustNew(ulid.Timestamp(t), rng).String()
}

// ledgerOf returns every entry of an account's ledger, newest first.
func ledgerOf(t *testing.T, s *models.Store, accountID string) []models.LedgerEntry {
	t.Helper()
	var out []models.LedgerEntry
	for before := ""; ; {
		page, err := s.LedgerPage(context.Background(), accountID, before, 100)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if len(page) < 100 {
			return out
		}
		before = page[len(page)-1].ID
	}
}

// TestPurgeRequestsKeepsRecentPendingAndMoney purges a request log in
// small batches: old finished requests go with their billing timelines;
// recent ones, old ones whose hold is still open, and the ledger stay.
func TestPurgeRequestsKeepsRecentPendingAndMoney(t *testing.T) {
	ctx := context.Background()
	s := models.NewStore(testenv.DB(t))
	a := testenv.FundedKey(t, s, "retention@example.com", models.MicrosPerUSD, models.KeyInput{Name: "k"})
	k := a.Key
	rng := rand.New(rand.NewSource(1))
	now := time.Now().UTC()
	old := now.AddDate(0, 0, -40)
	row := func(at time.Time) *models.Request {
		return &models.Request{ID: oldID(at, rng), AccountID: &a.ID, KeyID: &k.ID, Method: "POST",
			Path: "/v1/chat/completions", Model: "tt-chat-small", Status: 200, CreatedAt: at}
	}

	const oldRejected, oldCharged, recent = 230, 12, 15
	for i := 0; i < oldRejected; i++ {
		r := row(old.Add(time.Duration(i) * time.Second))
		r.Status, r.ErrorType = 429, "rate_limited"
		if err := s.LogRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < oldCharged; i++ {
		r := row(old.Add(time.Hour + time.Duration(i)*time.Second))
		h, err := s.StartCall(ctx, r, k.ID, nil, 1000, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.FinishCall(ctx, h, r, 700); err != nil {
			t.Fatal(err)
		}
	}
	pending := row(old.Add(2 * time.Hour))
	if _, err := s.StartCall(ctx, pending, k.ID, nil, 1000, time.Hour); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < recent; i++ {
		if err := s.LogRequest(ctx, row(now.Add(-time.Duration(i)*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	// The account's requests on its Requests pages, those of them that
	// held money (their detail shows the hold), and its ledger entries.
	counts := func() (requests, holds, ledger int) {
		ids := listedIDs(t, s, a.ID, 100)
		for _, id := range ids {
			r, err := s.RequestOf(ctx, a.ID, id)
			if err != nil {
				t.Fatal(err)
			}
			if r.HoldStatus != "" {
				holds++
			}
		}
		return len(ids), holds, len(ledgerOf(t, s, a.ID))
	}
	_, holdsBefore, ledgerBefore := counts()

	n, err := s.PurgeRequests(ctx, now.AddDate(0, 0, -30), 50, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if n != oldRejected+oldCharged {
		t.Fatalf("purged %d requests, want %d", n, oldRejected+oldCharged)
	}
	requests, holds, ledger := counts()
	if requests != recent+1 {
		t.Fatalf("%d requests left, want the %d recent ones and the pending one", requests, recent)
	}
	// A purged request's hold went with its row; the open one stays, and
	// the ledger, the money record, keeps every charge.
	if holdsBefore != oldCharged+1 || holds != 1 {
		t.Fatalf("%d holds left, want the open one (were %d)", holds, holdsBefore)
	}
	if ledger != ledgerBefore {
		t.Fatalf("the purge touched the ledger: %d entries, were %d", ledger, ledgerBefore)
	}
	if evs, err := s.Timeline(ctx, pending.ID); err != nil || len(evs) != 1 || evs[0].Event != "hold_placed" {
		t.Fatalf("the pending request's timeline: %+v, %v", evs, err)
	}
	if _, err := s.RequestOf(ctx, a.ID, pending.ID); err != nil {
		t.Fatalf("the pending request was purged: %v", err)
	}
	if err := s.LedgerInvariant(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	// Nothing more to do: a second purge deletes nothing.
	if n, err := s.PurgeRequests(ctx, now.AddDate(0, 0, -30), 50, 0); err != nil || n != 0 {
		t.Fatalf("second purge: %d, %v", n, err)
	}
}

// TestRetentionDropsWholeMonthsAndKeepsTheLedger purges a request log of
// four months at a cut-off in the middle of last month. On PostgreSQL
// whole months go: the month three back; the month two back only once
// its running call has ended; last month, which straddles the cut-off,
// not at all. On SQLite every finished request older than the cut-off
// goes. On both, a request dated years back (PostgreSQL's default
// partition) goes, the ledger keeps every charge of a purged request, and
// the invariants hold.
func TestRetentionDropsWholeMonthsAndKeepsTheLedger(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	s := models.NewStore(db)
	a := testenv.FundedKey(t, s, "retention-months@example.com", models.MicrosPerUSD, models.KeyInput{Name: "k"})
	acct, key := a.ID, a.Key.ID
	m0 := migrations.RequestPartitionOf(time.Now()).Month
	if _, err := s.EnsureRequestPartitions(ctx, m0.AddDate(0, -3, 0)); err != nil {
		t.Fatal(err)
	}
	month := func(back int) []string {
		at := m0.AddDate(0, -back, 4)
		ids := []string{}
		for i := range 5 {
			ids = append(ids, logAt(t, s, acct, key, at.Add(time.Duration(i)*time.Minute)))
		}
		id, _, _ := callAt(t, s, acct, key, at.Add(time.Hour), false)
		return append(ids, id)
	}
	m3, m2, m1 := month(3), month(2), month(1)
	ancient := logAt(t, s, acct, key, m0.AddDate(-5, 0, 0))
	running, h, r := callAt(t, s, acct, key, m0.AddDate(0, -2, 9), true)
	current := []string{logAt(t, s, acct, key, time.Now().Add(-time.Minute))}
	ledger := len(ledgerOf(t, s, acct))
	cut := m0.AddDate(0, -1, 10)

	found := func(ids ...string) (n int) {
		for _, id := range ids {
			_, err := s.RequestOf(ctx, acct, id)
			if err == nil {
				n++
			} else if !errors.Is(err, models.ErrNotFound) {
				t.Fatal(err)
			}
		}
		return n
	}
	check := func(step string, purged, want int, kept ...[]string) {
		t.Helper()
		if purged != want {
			t.Errorf("%s: purged %d requests, want %d", step, purged, want)
		}
		for _, ids := range kept {
			if n := found(ids...); n != len(ids) {
				t.Errorf("%s: %d of %v left, want all", step, n, ids)
			}
		}
		if after := len(ledgerOf(t, s, acct)); after != ledger {
			t.Errorf("%s: the ledger has %d entries, had %d", step, after, ledger)
		}
		if err := s.LedgerInvariant(ctx, acct); err != nil {
			t.Errorf("%s: %v", step, err)
		}
	}

	n, err := s.PurgeRequests(ctx, cut, 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	if db.Postgres {
		check("first purge", n, len(m3)+1, m2, m1, []string{running}, current)
	} else {
		check("first purge", n, len(m3)+len(m2)+len(m1)+1, []string{running}, current)
	}
	if found(m3...)+found(ancient) != 0 {
		t.Fatalf("first purge: the month three back or the request years back is still there")
	}

	if err := s.ReleaseCall(ctx, h, r, models.OutcomeNotChargedFailed); err != nil {
		t.Fatal(err)
	}
	n, err = s.PurgeRequests(ctx, cut, 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	if db.Postgres {
		check("after the running call ended", n, len(m2)+1, m1, current)
	} else {
		check("after the running call ended", n, 1, current)
	}
	if found(m2...)+found(running) != 0 {
		t.Fatalf("after the running call ended: the month two back is still there")
	}
	if db.Postgres {
		names := map[string]bool{}
		var rows []string
		db.Writer().Raw(`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = 'requests'::regclass`).Scan(&rows)
		for _, n := range rows {
			names[n] = true
		}
		if !names[migrations.RequestPartitionOf(m0).Name()] || !names[migrations.RequestPartitionOf(m0.AddDate(0, -1, 0)).Name()] ||
			names[migrations.RequestPartitionOf(m0.AddDate(0, -2, 0)).Name()] || !names[migrations.RequestsDefaultPartition] {
			t.Fatalf("partitions left: %v", rows)
		}
	}
}
