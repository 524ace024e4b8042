package models_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// TestDebitNeverOverdraws debits a wallet that has $5, $1 of it held by a
// running call: a debit of more than the $4 available is refused with
// the amounts and changes nothing; a debit of exactly $4 goes through; a
// credit to an account without a wallet is not found.
func TestDebitNeverOverdraws(t *testing.T) {
	s := models.NewStore(testenv.DB(t))
	ctx := context.Background()
	a := testenv.FundedKey(t, s, "debit@example.com", 5*models.MicrosPerUSD, models.KeyInput{Name: "k"})
	r := &models.Request{ID: s.NewRequestID(), AccountID: &a.ID, KeyID: &a.Key.ID, Method: "POST",
		Path: "/v1/chat/completions", CreatedAt: time.Now().UTC()}
	if _, err := s.StartCall(ctx, r, a.Key.ID, nil, models.MicrosPerUSD, time.Hour); err != nil {
		t.Fatal(err)
	}
	before, err := s.LedgerPage(ctx, a.ID, "", 100)
	if err != nil {
		t.Fatal(err)
	}

	_, err = s.Credit(ctx, a.ID, -4*models.MicrosPerUSD-1, models.LedgerAdjustment, "too much", models.LedgerRef{})
	var oe *models.OverdrawError
	if !errors.As(err, &oe) || oe.AvailableMicros != 4*models.MicrosPerUSD || oe.DebitMicros != 4*models.MicrosPerUSD+1 {
		t.Fatalf("a debit above the available balance: %v, want an overdraw error naming $4 available", err)
	}
	w, err := s.WalletOf(ctx, a.ID)
	if err != nil || w.BalanceMicros != 5*models.MicrosPerUSD || w.Available() != 4*models.MicrosPerUSD {
		t.Fatalf("after the refused debit the wallet is %+v, %v; want it unchanged", w, err)
	}
	if after, err := s.LedgerPage(ctx, a.ID, "", 100); err != nil || len(after) != len(before) {
		t.Fatalf("the refused debit wrote a ledger entry: %d entries before, %d after (%v)", len(before), len(after), err)
	}

	e, err := s.Credit(ctx, a.ID, -4*models.MicrosPerUSD, models.LedgerAdjustment, "all of it", models.LedgerRef{})
	if err != nil || e.BalanceAfterMicros != models.MicrosPerUSD {
		t.Fatalf("a debit of the whole available balance: %+v, %v; want a balance after of $1", e, err)
	}
	if w, err := s.WalletOf(ctx, a.ID); err != nil || w.Available() != 0 {
		t.Fatalf("after debiting all that was available: %+v, %v", w, err)
	}
	if err := s.LedgerInvariant(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	// A credit far above what fits in 32 bits of micro-dollars.
	if e, err := s.Credit(ctx, a.ID, 100_000*models.MicrosPerUSD, models.LedgerAdjustment, "big", models.LedgerRef{}); err != nil ||
		e.BalanceAfterMicros != 100_001*models.MicrosPerUSD {
		t.Fatalf("a credit of $100,000: %+v, %v", e, err)
	}
	if _, err := s.Credit(ctx, "acct_none", models.MicrosPerUSD, models.LedgerAdjustment, "", models.LedgerRef{}); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("a credit to no account: %v, want not found", err)
	}
}
