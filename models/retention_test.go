package models_test

import (
	"context"
	"math/rand"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// oldID is a request id made at t, as the gateway would have made it then.
func oldID(t time.Time, rng *rand.Rand) string {
	return "req_" + ulid.MustNew(ulid.Timestamp(t), rng).String()
}

// TestPurgeRequestsKeepsRecentPendingAndMoney purges a request log in
// small batches: old finished requests go with their billing timelines;
// recent ones, old ones whose hold is still open, and the ledger stay.
func TestPurgeRequestsKeepsRecentPendingAndMoney(t *testing.T) {
	ctx := context.Background()
	s := models.NewStore(testenv.DB(t))
	u, err := s.CreateAccount(ctx, "retention@example.com", "long enough password")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Credit(ctx, u.AccountID, models.MicrosPerUSD, models.LedgerAdjustment, "funds", models.LedgerRef{}); err != nil {
		t.Fatal(err)
	}
	k, _, err := s.CreateAPIKey(ctx, u.AccountID, models.AdminCLI, models.KeyInput{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	now := time.Now().UTC()
	old := now.AddDate(0, 0, -40)
	row := func(at time.Time) *models.Request {
		return &models.Request{ID: oldID(at, rng), AccountID: &u.AccountID, KeyID: &k.ID, Method: "POST",
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
	counts := func() (requests, holds, ledger int64) {
		db := s.DB().W
		db.Model(&models.Request{}).Count(&requests)
		db.Model(&models.Request{}).Where("hold_status <> ''").Count(&holds)
		db.Table("ledger_entries").Count(&ledger)
		return
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
	if _, err := s.RequestOf(ctx, u.AccountID, pending.ID); err != nil {
		t.Fatalf("the pending request was purged: %v", err)
	}
	if err := s.LedgerInvariant(ctx, u.AccountID); err != nil {
		t.Fatal(err)
	}
	// Nothing more to do: a second purge deletes nothing.
	if n, err := s.PurgeRequests(ctx, now.AddDate(0, 0, -30), 50, 0); err != nil || n != 0 {
		t.Fatalf("second purge: %d, %v", n, err)
	}
}
