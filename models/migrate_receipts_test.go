package models_test

import (
	"context"
	"testing"
	"time"

	"ttconsole/models"
)

// TestVersion20NumbersPaidPayments: payments paid before version 20 get
// receipt numbers in the order they were paid (not mailed again), the
// next payment paid gets the number after, and a low-balance warning set
// before carries over to the wallet, already passed.
func TestVersion20NumbersPaidPayments(t *testing.T) {
	db, p := migratedTo(t, 16)
	ctx := context.Background()
	w := db.Writer()
	now := time.Now().UTC()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO accounts (id, name, max_rpm, created_at, low_balance_micros) VALUES ('acct_a', 'a', 600, ?, 5000000)`, []any{now}},
		{`INSERT INTO users (id, account_id, email, password_hash, role, created_at, password_changed_at) VALUES ('user_a', 'acct_a', 'a@example.com', 'x', 'owner', ?, ?)`, []any{now, now}},
		{`INSERT INTO wallets (account_id, balance_micros, held_micros, updated_at) VALUES ('acct_a', 3000000, 0, ?)`, []any{now}},
		{`INSERT INTO payments (id, account_id, provider, amount_micros, currency, status, created_at, updated_at, paid_at)
			VALUES ('pay_1', 'acct_a', 'test', 5000000, 'usd', 'paid', ?, ?, ?)`, []any{now, now, now.Add(2 * time.Minute)}},
		{`INSERT INTO payments (id, account_id, provider, amount_micros, currency, status, created_at, updated_at, paid_at)
			VALUES ('pay_2', 'acct_a', 'test', 6000000, 'usd', 'paid', ?, ?, ?)`, []any{now, now, now.Add(time.Minute)}},
		{`INSERT INTO payments (id, account_id, provider, amount_micros, currency, status, created_at, updated_at)
			VALUES ('pay_3', 'acct_a', 'test', 7000000, 'usd', 'pending', ?, ?)`, []any{now, now}},
	} {
		if err := w.Exec(q.sql, q.args...).Error; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.UpTo(ctx, 20); err != nil {
		t.Fatal(err)
	}
	s := models.NewStore(db)
	if st, err := s.WalletStatesOf(ctx, "acct_a"); err != nil || st.LowState != models.LowSent {
		t.Fatalf("low-balance state %+v %v: $3.00 is below the $5.00 warning set before: want sent (no mail for it)", st, err)
	}
	want := map[string]int64{"pay_2": 1, "pay_1": 2}
	for id, n := range want {
		pay, err := s.PaymentOf(ctx, "acct_a", id)
		if err != nil {
			t.Fatal(err)
		}
		if pay.ReceiptNumber == nil || *pay.ReceiptNumber != n || pay.ReceiptMailedAt == nil || pay.Kind != models.PaymentRecharge {
			t.Fatalf("%s: receipt %v, mailed %v, kind %q; want %d, not to mail, recharge", id, pay.ReceiptNumber, pay.ReceiptMailedAt, pay.Kind, n)
		}
	}
	if rs, err := s.UnmailedReceipts(ctx, 10); err != nil || len(rs) != 0 {
		t.Fatalf("receipts to mail after the migration: %d, %v", len(rs), err)
	}
	res, err := s.ApplyPaymentEvent(ctx, models.PaymentEvent{ID: "evt_3", Provider: "test", Type: models.EventCheckoutCompleted,
		ClientReferenceID: "pay_3", AmountCents: 700, Currency: "usd", PaymentStatus: "paid"}, models.Actor{})
	if err != nil || res.Outcome != models.EventCredited {
		t.Fatalf("pay pay_3: %+v %v", res, err)
	}
	if pay, _ := s.PaymentOf(ctx, "acct_a", "pay_3"); pay.ReceiptNumber == nil || *pay.ReceiptNumber != 3 {
		t.Fatalf("the next paid payment: receipt %v, want 3", pay.ReceiptNumber)
	}
	st, err := s.WalletStatesOf(ctx, "acct_a")
	if err != nil || st.LowState != models.LowArmed { // $10 now, above the $5 warning: the credit armed it
		t.Fatalf("low-balance state %+v %v, want armed after the credit", st, err)
	}
}
