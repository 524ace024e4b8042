package models_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// Holds that share a group are decided one by one in arrival order, as if
// each ran alone, although the wallet and each key's month are updated
// once for them all; ending them together charges each its own cost, with
// ledger entries whose balances follow one another.
func TestGroupPlacesAndEndsHoldsInOrder(t *testing.T) {
	s := models.NewStore(testenv.DB(t))
	ctx := context.Background()
	const hold = 1000
	a := testenv.FundedKey(t, s, "group@example.com", 6*hold, models.KeyInput{Name: "any"})
	any := a.Key
	limited, _, err := s.CreateAPIKey(ctx, a.ID, models.AdminCLI, models.KeyInput{Name: "limited", MonthlyLimitUSD: "0.003"})
	if err != nil {
		t.Fatal(err)
	}
	// Room for six holds in the wallet and three on the limited key:
	// arriving in this order, calls 6 (the key's fourth) and 9 to 11 (past
	// the wallet) are refused.
	keys := []*models.APIKey{limited, limited, any, limited, any, limited, any, any, any, any}
	type result struct {
		h   *models.Hold
		r   *models.Request
		err error
	}
	results := make([]chan result, len(keys))
	queued, release := s.HoldWrites()
	for i, k := range keys {
		results[i] = make(chan result, 1)
		r := &models.Request{ID: s.NewRequestID(), AccountID: &a.ID, KeyID: &k.ID, Method: "POST",
			Path: "/v1/chat/completions", Status: 200, CreatedAt: time.Now().UTC()}
		go func() {
			h, err := s.StartCall(ctx, r, k.ID, k.MonthlyLimitMicros, hold, time.Minute)
			results[i] <- result{h, r, err}
		}()
		queued(i + 1)
	}
	release()
	var placed []result
	for i := range keys {
		got := <-results[i]
		var qe *models.QuotaError
		var se *models.ShortfallError
		switch call := i + 1; {
		case call == 6:
			if !errors.As(got.err, &qe) || qe.MonthToDateMicros != 3*hold || qe.LimitMicros != 3*hold {
				t.Errorf("call 6: %v, want the key's limit of 3 holds reached", got.err)
			}
		case call >= 8:
			if !errors.As(got.err, &se) || se.AvailableMicros != 0 {
				t.Errorf("call %d: %v, want a shortfall with nothing available", call, got.err)
			}
		case got.err != nil:
			t.Errorf("call %d: %v, want its hold placed", call, got.err)
		default:
			placed = append(placed, got)
		}
	}
	if n := s.BulkHolds(); n != int64(len(keys)) {
		t.Errorf("%d holds were placed together, want all %d", n, len(keys))
	}
	w, err := s.WalletOf(ctx, a.ID)
	if err != nil || w.HeldMicros != 6*hold || w.BalanceMicros != 6*hold {
		t.Fatalf("wallet %+v (%v): want all six holds on it", w, err)
	}
	if err := s.LedgerInvariant(ctx, a.ID); err != nil {
		t.Fatal(err)
	}

	// End them all in one group: five captured at different costs, one
	// released.
	queued, release = s.HoldWrites()
	done := make(chan error, len(placed))
	var want int64
	for i, p := range placed {
		cost := int64(100 * (i + 1))
		go func() {
			if i == 2 {
				done <- s.ReleaseCall(ctx, p.h, p.r, models.OutcomeNotChargedFailed)
				return
			}
			done <- s.FinishCall(ctx, p.h, p.r, cost)
		}()
		if i != 2 {
			want += cost
		}
		queued(i + 1)
	}
	release()
	for range placed {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	w, _ = s.WalletOf(ctx, a.ID)
	if w.HeldMicros != 0 || w.BalanceMicros != 6*hold-want {
		t.Fatalf("wallet %+v: want nothing held and %d charged", w, want)
	}
	if err := s.LedgerInvariant(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	entries, err := s.LedgerPage(ctx, a.ID, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(entries) // oldest first
	if len(entries) != 6 {
		t.Fatalf("%d ledger entries, want the credit and five charges", len(entries))
	}
	for i := 1; i < len(entries); i++ {
		if e := entries[i]; e.BalanceAfterMicros != entries[i-1].BalanceAfterMicros+e.AmountMicros {
			t.Errorf("entry %d: %d after %d, from %d before", i, e.AmountMicros, e.BalanceAfterMicros, entries[i-1].BalanceAfterMicros)
		}
	}
	for _, p := range placed {
		r, err := s.RequestOf(ctx, a.ID, p.r.ID)
		if err != nil || r.HoldStatus == models.HoldOpen {
			t.Errorf("request %s: %v, hold %s", p.r.ID, err, r.HoldStatus)
		}
	}
}

// TestGroupWhoseCommitFailsFailsOnlyItsCaller: on PostgreSQL the
// statements of a settlement whose answers nothing waits for go with the
// group's COMMIT. When one of them fails there, the server rolls the
// whole group back; each settlement then runs again alone, so only the
// call whose statement failed gets the error, and the others are charged.
func TestGroupWhoseCommitFailsFailsOnlyItsCaller(t *testing.T) {
	db := testenv.PostgresDB(t) // the statements sent with the COMMIT are PostgreSQL's
	s := models.NewStore(db)
	ctx := context.Background()
	const hold = 1000
	a := testenv.FundedKey(t, s, "commit@example.com", 10*hold, models.KeyInput{Name: "k"})
	type call struct {
		h *models.Hold
		r *models.Request
	}
	var calls []call
	for range 3 {
		r := &models.Request{ID: s.NewRequestID(), AccountID: &a.ID, KeyID: &a.Key.ID, Method: "POST",
			Path: "/v1/chat/completions", Status: 200, CreatedAt: time.Now().UTC()}
		h, err := s.StartCall(ctx, r, a.Key.ID, nil, hold, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		calls = append(calls, call{h, r})
	}
	// The ledger refuses the charge of the second call: its insert is one
	// of the statements that go with the COMMIT.
	bad := calls[1].r.ID
	for _, q := range []string{
		`CREATE FUNCTION refuse_charge() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'charge refused for %', NEW.request_id; END $$`,
		`CREATE TRIGGER refuse_charge BEFORE INSERT ON ledger_entries FOR EACH ROW
		WHEN (NEW.request_id = '` + bad + `') EXECUTE FUNCTION refuse_charge()`,
	} {
		if err := db.Writer().Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}

	queued, release := s.HoldWrites()
	done := make([]chan error, len(calls))
	for i, c := range calls {
		done[i] = make(chan error, 1)
		go func() { done[i] <- s.FinishCall(ctx, c.h, c.r, 300) }()
		queued(i + 1)
	}
	release()
	for i, c := range calls {
		err := <-done[i]
		r, rerr := s.RequestOf(ctx, a.ID, c.r.ID)
		if rerr != nil {
			t.Fatal(rerr)
		}
		switch {
		case c.r.ID == bad:
			if err == nil || r.HoldStatus != models.HoldOpen || r.ChargedMicros != 0 {
				t.Errorf("the refused call: %v, hold %s, charged %d; want its error and its hold still open", err, r.HoldStatus, r.ChargedMicros)
			}
		case err != nil || r.HoldStatus != models.HoldCaptured || r.ChargedMicros != 300:
			t.Errorf("call %d beside the refused one: %v, hold %s, charged %d; want it charged", i, err, r.HoldStatus, r.ChargedMicros)
		}
	}
	w, err := s.WalletOf(ctx, a.ID)
	if err != nil || w.BalanceMicros != 10*hold-600 || w.HeldMicros != hold {
		t.Fatalf("wallet %+v %v: want two charges of 300 and the refused call's hold", w, err)
	}
	if err := s.LedgerInvariant(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
}
