package models_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// member and webhook are who these tests' changes are made by: a member
// in the console, and the request that delivers a provider's event.
var (
	member  = models.Actor{Name: "payer@example.com", IP: "198.51.100.7"}
	webhook = models.Actor{IP: "203.0.113.9"}
)

func newAccount(t *testing.T, s *models.Store, email string) string {
	t.Helper()
	u, err := s.CreateAccount(context.Background(), email, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	return u.AccountID
}

// newCheckout records a pending payment of usd dollars with a checkout
// session, as the recharge handler does, and returns it.
func newCheckout(t *testing.T, s *models.Store, acct string, usd int64) *models.Payment {
	t.Helper()
	ctx := context.Background()
	p, err := s.CreatePayment(ctx, acct, "stripe", usd*models.MicrosPerUSD, member)
	if err != nil {
		t.Fatal(err)
	}
	sid := "cs_" + p.ID
	if err := s.AttachCheckout(ctx, p.ID, sid, "https://checkout.example/"+sid); err != nil {
		t.Fatal(err)
	}
	p.SessionID = &sid
	return p
}

func event(id, typ string, p *models.Payment, paymentStatus string) models.PaymentEvent {
	return models.PaymentEvent{ID: id, Provider: "stripe", Type: typ, SessionID: *p.SessionID,
		ClientReferenceID: p.ID, AmountCents: p.AmountCents(), Currency: "usd", PaymentStatus: paymentStatus}
}

func apply(t *testing.T, s *models.Store, ev models.PaymentEvent) string {
	t.Helper()
	res, err := s.ApplyPaymentEvent(context.Background(), ev, webhook)
	if err != nil {
		t.Fatalf("apply %s: %v", ev.ID, err)
	}
	return res.Outcome
}

// wallet checks an account's balance, its ledger invariant, and how many
// recharge entries its ledger has.
func wallet(t *testing.T, s *models.Store, acct string, wantBalance int64, wantRecharges int) {
	t.Helper()
	ctx := context.Background()
	w, err := s.WalletOf(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	if w.BalanceMicros != wantBalance {
		t.Errorf("balance = %s, want %s", models.FormatUSD(w.BalanceMicros), models.FormatUSD(wantBalance))
	}
	if err := s.LedgerInvariant(ctx, acct); err != nil {
		t.Errorf("ledger invariant: %v", err)
	}
	entries, err := s.LedgerPage(ctx, acct, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.Kind == models.LedgerRecharge {
			n++
		}
	}
	if n != wantRecharges {
		t.Errorf("%d recharge entries in the ledger, want %d", n, wantRecharges)
	}
}

func paymentStatus(t *testing.T, s *models.Store, p *models.Payment) string {
	t.Helper()
	got, err := s.PaymentOf(context.Background(), p.AccountID, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got.Status
}

func TestValidateRecharge(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64 // 0: invalid
		msg  string
	}{
		{"25", 25_000_000, ""},
		{"5", 5_000_000, ""},
		{"$12.50", 12_500_000, ""},
		{" 1,000.05 ", 1_000_050_000, ""},
		{"10000", 10_000_000_000, ""},
		{"4.99", 0, "The smallest recharge is $5.00."},
		{"10000.01", 0, "The largest recharge is $10,000.00."},
		{"12.345", 0, "Use at most two decimals (whole cents)."},
		{"12.000001", 0, "Use at most two decimals (whole cents)."},
		{"", 0, "Enter an amount in dollars, like 25 or 12.50."},
		{"abc", 0, "Enter an amount in dollars, like 25 or 12.50."},
		{"1e3", 0, "Enter an amount in dollars, like 25 or 12.50."},
		{"NaN", 0, "Enter an amount in dollars, like 25 or 12.50."},
		{"-25", 0, "Enter a positive amount."},
		{"99999999999999999999", 0, "Enter an amount in dollars, like 25 or 12.50."},
	} {
		got, err := models.ValidateRecharge(tc.in)
		if tc.want != 0 {
			if err != nil || got != tc.want {
				t.Errorf("ValidateRecharge(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
			continue
		}
		me, ok := err.(*models.Error)
		if !ok || me.Fields["amount_usd"] != tc.msg {
			t.Errorf("ValidateRecharge(%q) = %d, %v; want the field message %q", tc.in, got, err, tc.msg)
		}
	}
}

func TestRechargeFor(t *testing.T) {
	for _, tc := range []struct{ need, want int64 }{
		{0, 5_000_000}, {123, 5_000_000}, {12_340_001, 12_350_000}, {25_000_000, 25_000_000},
		{20_000_000_000, 10_000_000_000},
	} {
		if got := models.RechargeFor(tc.need); got != tc.want {
			t.Errorf("RechargeFor(%d) = %d, want %d", tc.need, got, tc.want)
		}
	}
}

// Ten concurrent deliveries of one event, and at the same time ten
// deliveries of a second event about the same checkout, credit it once.
func TestPaymentEventConcurrentDeliveriesCreditOnce(t *testing.T) {
	s := models.NewStore(testenv.DB(t))
	acct := newAccount(t, s, "ada@example.com")
	p := newCheckout(t, s, acct, 25)

	var wg sync.WaitGroup
	outcomes := make(chan string, 20)
	for i := range 20 {
		ev := event("evt_completed", models.EventCheckoutCompleted, p, "paid")
		if i%2 == 1 {
			ev = event("evt_async", models.EventAsyncPaymentSucceeded, p, "paid")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.ApplyPaymentEvent(context.Background(), ev, webhook)
			if err != nil {
				t.Errorf("apply: %v", err)
				return
			}
			outcomes <- res.Outcome
		}()
	}
	wg.Wait()
	close(outcomes)
	count := map[string]int{}
	for o := range outcomes {
		count[o]++
	}
	if count[models.EventCredited] != 1 || count[models.EventDuplicate] != 18 || count[models.EventAlreadyPaid] != 1 {
		t.Errorf("outcomes = %v, want 1 credited, 18 duplicates, 1 already paid", count)
	}
	wallet(t, s, acct, 25*models.MicrosPerUSD, 1)
	if st := paymentStatus(t, s, p); st != models.PaymentPaid {
		t.Errorf("payment status %q, want paid", st)
	}
}

func TestPaymentEventOrders(t *testing.T) {
	const usd = 40
	for _, tc := range []struct {
		name   string
		events []models.PaymentEvent // ID, Type, PaymentStatus; filled per payment
		want   []string
		status string
		credit bool
	}{
		{"async succeeded before completed",
			[]models.PaymentEvent{{ID: "e1", Type: models.EventAsyncPaymentSucceeded, PaymentStatus: "paid"}, {ID: "e2", Type: models.EventCheckoutCompleted, PaymentStatus: "paid"}},
			[]string{models.EventCredited, models.EventAlreadyPaid}, models.PaymentPaid, true},
		{"completed unpaid waits for the async success",
			[]models.PaymentEvent{{ID: "e1", Type: models.EventCheckoutCompleted, PaymentStatus: "unpaid"}, {ID: "e2", Type: models.EventAsyncPaymentSucceeded, PaymentStatus: "paid"}},
			[]string{models.EventAwaitingFunds, models.EventCredited}, models.PaymentPaid, true},
		{"completed unpaid then failed",
			[]models.PaymentEvent{{ID: "e1", Type: models.EventCheckoutCompleted, PaymentStatus: "unpaid"}, {ID: "e2", Type: models.EventAsyncPaymentFailed, PaymentStatus: "unpaid"}},
			[]string{models.EventAwaitingFunds, models.EventMarkedFailed}, models.PaymentFailed, false},
		{"a late failure does not undo a payment",
			[]models.PaymentEvent{{ID: "e1", Type: models.EventAsyncPaymentSucceeded, PaymentStatus: "paid"}, {ID: "e2", Type: models.EventAsyncPaymentFailed, PaymentStatus: "unpaid"}},
			[]string{models.EventCredited, models.EventNoChange}, models.PaymentPaid, true},
		{"expired unpaid",
			[]models.PaymentEvent{{ID: "e1", Type: models.EventCheckoutExpired, PaymentStatus: "unpaid"}, {ID: "e1", Type: models.EventCheckoutExpired, PaymentStatus: "unpaid"}},
			[]string{models.EventMarkedExpired, models.EventDuplicate}, models.PaymentExpired, false},
		{"other event types are recorded and ignored",
			[]models.PaymentEvent{{ID: "e1", Type: "customer.created"}},
			[]string{models.EventIgnored}, models.PaymentPending, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := models.NewStore(testenv.DB(t))
			acct := newAccount(t, s, "ada@example.com")
			p := newCheckout(t, s, acct, usd)
			for i, e := range tc.events {
				ev := event(e.ID, e.Type, p, e.PaymentStatus)
				if got := apply(t, s, ev); got != tc.want[i] {
					t.Errorf("event %d (%s %s): outcome %q, want %q", i, e.Type, e.PaymentStatus, got, tc.want[i])
				}
			}
			if st := paymentStatus(t, s, p); st != tc.status {
				t.Errorf("payment status %q, want %q", st, tc.status)
			}
			var balance int64
			n := 0
			if tc.credit {
				balance, n = usd*models.MicrosPerUSD, 1
			}
			wallet(t, s, acct, balance, n)
		})
	}
}

func TestPaymentEventMismatchesAreNotCredited(t *testing.T) {
	s := models.NewStore(testenv.DB(t))
	acct := newAccount(t, s, "ada@example.com")
	p := newCheckout(t, s, acct, 25)

	ev := event("e1", models.EventCheckoutCompleted, p, "paid")
	ev.AmountCents = 1
	if got := apply(t, s, ev); got != models.EventMismatch {
		t.Errorf("wrong amount: %q, want %q", got, models.EventMismatch)
	}
	ev = event("e2", models.EventCheckoutCompleted, p, "paid")
	ev.Currency = "eur"
	if got := apply(t, s, ev); got != models.EventMismatch {
		t.Errorf("wrong currency: %q, want %q", got, models.EventMismatch)
	}
	ev = event("e3", models.EventCheckoutCompleted, p, "paid")
	ev.SessionID, ev.ClientReferenceID = "cs_someone_else", "pay_unknown"
	if got := apply(t, s, ev); got != models.EventUnknownSession {
		t.Errorf("unknown session: %q, want %q", got, models.EventUnknownSession)
	}
	wallet(t, s, acct, 0, 0)
	if st := paymentStatus(t, s, p); st != models.PaymentPending {
		t.Errorf("payment status %q, want pending", st)
	}
}

// An event that arrives before the session id was stored finds its
// payment by client_reference_id.
func TestPaymentEventByClientReference(t *testing.T) {
	s := models.NewStore(testenv.DB(t))
	acct := newAccount(t, s, "ada@example.com")
	p, err := s.CreatePayment(context.Background(), acct, "stripe", 10*models.MicrosPerUSD, member)
	if err != nil {
		t.Fatal(err)
	}
	sid := "cs_early"
	p.SessionID = &sid
	if got := apply(t, s, event("e1", models.EventCheckoutCompleted, p, "paid")); got != models.EventCredited {
		t.Fatalf("outcome %q, want credited", got)
	}
	got, err := s.PaymentBySession(context.Background(), acct, sid)
	if err != nil || got.ID != p.ID || got.LedgerEntryID == nil {
		t.Fatalf("payment by session: %+v %v", got, err)
	}
	wallet(t, s, acct, 10*models.MicrosPerUSD, 1)
}

func TestPaymentsBelongToTheirAccount(t *testing.T) {
	s := models.NewStore(testenv.DB(t))
	ctx := context.Background()
	a := newAccount(t, s, "ada@example.com")
	b := newAccount(t, s, "bob@example.com")
	p := newCheckout(t, s, a, 10)
	if _, err := s.PaymentOf(ctx, b, p.ID); models.ErrorCode(err) != models.ENOTFOUND {
		t.Errorf("another account's payment: %v, want not found", err)
	}
	if _, err := s.PaymentBySession(ctx, b, *p.SessionID); models.ErrorCode(err) != models.ENOTFOUND {
		t.Errorf("another account's session: %v, want not found", err)
	}
	if list, _ := s.RecentPayments(ctx, b, 10); len(list) != 0 {
		t.Errorf("another account lists %d payments", len(list))
	}
}

func TestLowBalanceThreshold(t *testing.T) {
	s := models.NewStore(testenv.DB(t))
	ctx := context.Background()
	acct := newAccount(t, s, "ada@example.com")
	if v, err := s.LowBalanceThreshold(ctx, acct); err != nil || v != nil {
		t.Fatalf("new account threshold = %v, %v; want none", v, err)
	}
	for in, msg := range map[string]string{
		"abc": "Enter an amount in dollars, like 25 or 12.50.", "1.234": "Use at most two decimals (whole cents).",
		"-1": "Enter a positive amount.", "2000000": "Use at most $1,000,000.00.",
	} {
		_, err := s.SetLowBalanceThreshold(ctx, acct, in, member)
		if me, ok := err.(*models.Error); !ok || me.Fields["low_balance_usd"] != msg {
			t.Errorf("threshold %q: %v, want %q", in, err, msg)
		}
	}
	if _, err := s.SetLowBalanceThreshold(ctx, acct, "12.50", member); err != nil {
		t.Fatal(err)
	}
	v, _ := s.LowBalanceThreshold(ctx, acct)
	w, _ := s.WalletOf(ctx, acct)
	if v == nil || *v != 12_500_000 || !models.IsLowBalance(w, v) {
		t.Fatalf("threshold = %v, low = %v; want $12.50 and low", v, models.IsLowBalance(w, v))
	}
	if _, err := s.SetLowBalanceThreshold(ctx, acct, "", member); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.LowBalanceThreshold(ctx, acct); v != nil {
		t.Fatalf("threshold after clearing = %v, want none", *v)
	}
}

// After recharges and API calls (charged, released, partly captured), the
// balance is the sum of the ledger, held is the sum of open holds, and the
// day's spend is what the calls were charged.
func TestLedgerInvariantAfterRechargesAndCalls(t *testing.T) {
	s := models.NewStore(testenv.DB(t))
	ctx := context.Background()
	acct := newAccount(t, s, "ada@example.com")
	var credited int64
	for i, usd := range []int64{10, 25} {
		p := newCheckout(t, s, acct, usd)
		if got := apply(t, s, event(fmt.Sprint("evt_", i), models.EventCheckoutCompleted, p, "paid")); got != models.EventCredited {
			t.Fatalf("recharge %d: %s", i, got)
		}
		credited += usd * models.MicrosPerUSD
	}
	var charged int64
	var open []*models.Hold
	for i, cost := range []int64{1_234_567, 0, 3_000_001, 500, 2_000_000} {
		r := &models.Request{ID: s.NewRequestID(), AccountID: &acct, Method: "POST", Path: "/v1/chat/completions",
			Model: "tt-chat-small", Status: 200, CreatedAt: time.Now().UTC()}
		h, err := s.StartCall(ctx, r, "key_test", nil, 3_000_001, time.Minute)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		switch i {
		case 1:
			err = s.ReleaseCall(ctx, h, r, models.OutcomeNotChargedFailed)
		case 4:
			open = append(open, h) // still running
		default:
			err = s.FinishCall(ctx, h, r, cost)
			charged += cost
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := s.LedgerInvariant(ctx, acct); err != nil {
			t.Fatalf("after call %d: %v", i, err)
		}
		if i == 2 {
			p := newCheckout(t, s, acct, 5)
			apply(t, s, event("evt_mid", models.EventAsyncPaymentSucceeded, p, "paid"))
			credited += 5 * models.MicrosPerUSD
		}
	}
	wallet(t, s, acct, credited-charged, 3)
	w, _ := s.WalletOf(ctx, acct)
	if w.HeldMicros != open[0].AmountMicros {
		t.Errorf("held = %d, want the open hold %d", w.HeldMicros, open[0].AmountMicros)
	}
	spent, err := s.SpendSince(ctx, acct, models.MonthStart(time.Now()))
	if err != nil || spent != charged {
		t.Errorf("month-to-date spend = %d, %v; want %d", spent, err, charged)
	}
	days, err := s.DailySpend(ctx, acct, 30, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(days) != 30 || days[29].Micros != charged || days[0].Micros != 0 {
		t.Errorf("daily spend: %d days, today %d (want %d), first %d", len(days), days[29].Micros, charged, days[0].Micros)
	}
}
