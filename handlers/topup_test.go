package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"ttconsole/handlers"
	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// mailbox keeps the mails billing sends.
type mailbox struct {
	mu    sync.Mutex
	mails []sentMail
}

type sentMail struct{ to, subject, text string }

func (m *mailbox) observe(to, subject, text string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mails = append(m.mails, sentMail{to, subject, text})
}

// with returns the mails whose subject contains s.
func (m *mailbox) with(s string) []sentMail {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []sentMail
	for _, ml := range m.mails {
		if strings.Contains(ml.subject, s) {
			out = append(out, ml)
		}
	}
	return out
}

// topupOptions is a server whose billing work runs when the test says
// (BillingRound), with a mailbox, a short backoff after failures, and the
// webhook secret of billing_test.go.
func topupOptions(box *mailbox) testenv.Options {
	return testenv.Options{
		Config: handlers.Config{StripeWebhookSecrets: []string{testWebhookSecret}},
		Adjust: func(a *handlers.App) {
			a.BillingPoll = -1
			a.TopupBackoff = time.Millisecond
			a.MailObserver = box.observe
		},
	}
}

// saveTestCard saves one of the test provider's cards through the Billing
// page and the TEST MODE setup page.
func (p *payer) saveTestCard(number string) {
	p.t.Helper()
	res, body := p.post("/billing", "/billing/payment-method", nil)
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/billing/test-setup/cs_test_") {
		p.t.Fatalf("save a card: %d to %q\n%s", res.StatusCode, loc, body)
	}
	_, page := p.get(loc)
	if !strings.Contains(page, "TEST MODE") || testenv.Doc(p.t, page).Find(`input[name=card]`).Length() != 3 {
		p.t.Fatalf("the test setup page does not offer three test cards in TEST MODE:\n%s", page)
	}
	res, body = p.post(loc, loc, url.Values{"action": {"save"}, "card": {number}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/billing?card=saved#payment-method" {
		p.t.Fatalf("save test card %s: %d to %q\n%s", number, res.StatusCode, res.Header.Get("Location"), body)
	}
}

// setTopup submits the auto top-up form.
func (p *payer) setTopup(enabled, threshold, amount, limit string) (*http.Response, string) {
	p.t.Helper()
	return p.post("/billing", "/billing/auto-topup", url.Values{"enabled": {enabled}, "threshold_usd": {threshold},
		"amount_usd": {amount}, "monthly_cap_usd": {limit}})
}

// credit adds (or, negative, takes) money as an adjustment.
func (p *payer) credit(usd float64) {
	p.t.Helper()
	if _, err := p.srv.Store.Credit(context.Background(), p.account, int64(usd*float64(models.MicrosPerUSD)),
		models.LedgerAdjustment, "test", models.LedgerRef{}); err != nil {
		p.t.Fatal(err)
	}
}

func (p *payer) topups() []models.Payment {
	p.t.Helper()
	ps, err := p.srv.Store.RecentPayments(context.Background(), p.account, 100)
	if err != nil {
		p.t.Fatal(err)
	}
	var out []models.Payment
	for _, pay := range ps {
		if pay.IsAutoTopup() {
			out = append(out, pay)
		}
	}
	return out
}

// ledgerKinds counts the account's ledger entries by kind.
func (p *payer) ledgerKinds() map[string]int {
	p.t.Helper()
	es, err := p.srv.Store.LedgerPage(context.Background(), p.account, "", 10_000)
	if err != nil {
		p.t.Fatal(err)
	}
	n := map[string]int{}
	for _, e := range es {
		n[e.Kind]++
	}
	return n
}

func (p *payer) round() { p.srv.App.BillingRound(context.Background()) }

func (p *payer) profile() *models.BillingProfile {
	p.t.Helper()
	prof, err := p.srv.Store.BillingProfileOf(context.Background(), p.account)
	if err != nil {
		p.t.Fatal(err)
	}
	return prof
}

func (p *payer) billingDoc() (string, func(sel string) string) {
	p.t.Helper()
	_, page := p.get("/billing")
	doc := testenv.Doc(p.t, page)
	return page, func(sel string) string { return strings.TrimSpace(doc.Find(sel).Text()) }
}

// TestSavedCardAndAutoTopupSettings: a card saved through the test
// provider's setup page is shown on Billing and can be removed; the auto
// top-up form checks every field, says what is wrong beside it, stores
// nothing when anything is, needs a saved card to turn on, and says the
// settings in one sentence.
func TestSavedCardAndAutoTopupSettings(t *testing.T) {
	box := &mailbox{}
	srv := testenv.NewServer(t, topupOptions(box))
	p := newPayer(t, srv, "ada@example.com")

	if _, text := p.billingDoc(); text(`[data-testid=no-card]`) == "" || text(`[data-testid=topup-off]`) == "" {
		t.Fatal("Billing does not say that no card is saved and auto top-up is off")
	}
	res, _ := p.setTopup("on", "5", "20", "100")
	if res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("enabling without a card: %d, want 422", res.StatusCode)
	}

	p.saveTestCard("4242")
	// The audit log says who saved which card: the payment provider, once.
	saved, _, err := srv.Store.AuditLog(context.Background(), p.account, models.AuditFilter{Action: models.AuditCardSaved}, 10)
	if err != nil || len(saved) != 1 || saved[0].Actor != models.ActorPaymentProvider || saved[0].After != "Visa •••• 4242" {
		t.Fatalf("audit entries of the saved card: %+v (%v), want one by the payment provider naming Visa •••• 4242", saved, err)
	}
	page, text := p.billingDoc()
	if got := text(`[data-testid=saved-card]`); !strings.Contains(got, "Visa •••• 4242") || !strings.Contains(got, "expires 12/") {
		t.Fatalf("saved card shows %q, want Visa •••• 4242 with its expiry", got)
	}
	if !strings.Contains(page, `action="/billing/payment-method/remove"`) {
		t.Fatal("no Remove button beside the saved card")
	}

	for _, tc := range []struct {
		name                             string
		enabled, threshold, amount, cap_ string
		field, msg                       string
	}{
		{"threshold not a number", "on", "five", "20", "100", "threshold_usd", "Enter an amount in dollars"},
		{"threshold too small", "on", "0.50", "20", "100", "threshold_usd", "at least $1.00"},
		{"amount below a recharge", "on", "5", "4.99", "100", "amount_usd", "The smallest top-up is $5.00."},
		{"amount above a recharge", "on", "5", "10000.01", "100000", "amount_usd", "The largest top-up is $10,000.00."},
		{"amount in fractions of a cent", "on", "5", "20.001", "100", "amount_usd", "whole cents"},
		{"cap missing", "on", "5", "20", "", "monthly_cap_usd", "Enter an amount in dollars"},
		{"cap below the amount", "on", "5", "20", "19.99", "monthly_cap_usd", "at least the top-up amount, $20.00"},
		{"negative cap", "on", "5", "20", "-1", "monthly_cap_usd", "positive"},
		{"enabled not on", "yes", "5", "20", "100", "enabled", "Tick the box"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, page := p.setTopup(tc.enabled, tc.threshold, tc.amount, tc.cap_)
			if res.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422", res.StatusCode)
			}
			doc := testenv.Doc(t, page)
			msg := doc.Find(`#auto-topup [data-field="` + tc.field + `"]`).Text()
			if !strings.Contains(msg, tc.msg) {
				t.Fatalf("message beside %s: %q, want %q", tc.field, msg, tc.msg)
			}
			if v, _ := doc.Find(`#auto-topup input[name="amount_usd"]`).Attr("value"); v != tc.amount {
				t.Fatalf("the form does not keep what was typed: amount %q", v)
			}
			if prof := p.profile(); prof.TopupEnabled || prof.TopupAmountMicros != 0 {
				t.Fatalf("a refused form was stored: %+v", prof)
			}
		})
	}

	if res, body := p.setTopup("on", "5", "20", "100"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("valid settings: %d\n%s", res.StatusCode, body)
	}
	_, text = p.billingDoc()
	if got, want := text(`[data-testid=topup-sentence]`), "When available balance drops below $5.00, add $20.00 (at most $100.00 a month)."; got != want {
		t.Fatalf("Billing says %q, want %q", got, want)
	}

	res, _ = p.post("/billing", "/billing/payment-method/remove", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove card: %d", res.StatusCode)
	}
	_, text = p.billingDoc()
	if text(`[data-testid=saved-card]`) != "" || text(`[data-testid=no-card]`) == "" || text(`[data-testid=topup-off]`) == "" {
		t.Fatal("after removing the card, Billing still shows it, or auto top-up still on")
	}
	if prof := p.profile(); prof.HasCard() || prof.TopupEnabled {
		t.Fatalf("profile after removal: %+v", prof)
	}
}

// topupAccount is a payer with a saved test card, auto top-up on
// (threshold $5, $20, cap capUSD) and available at startUSD.
func topupAccount(t *testing.T, srv *testenv.Server, email, card string, startUSD float64, capUSD string) *payer {
	t.Helper()
	p := newPayer(t, srv, email)
	p.saveTestCard(card)
	p.credit(startUSD)
	if res, body := p.setTopup("on", "5", "20", capUSD); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("auto top-up settings: %d\n%s", res.StatusCode, body)
	}
	return p
}

// TestAutoTopupOneTopupForConcurrentCalls: 200 calls at once take the
// available balance below the threshold; exactly one top-up is charged
// and credited once, with receipt 000001 mailed once, whatever the number
// of billing rounds running at once (on PostgreSQL: two instances of the
// product on one database, calls and rounds on both).
func TestAutoTopupOneTopupForConcurrentCalls(t *testing.T) {
	box := &mailbox{}
	var srvs []*testenv.Server
	if testenv.Postgres() {
		srvs = testenv.Instances(t, 2, topupOptions(box))
	} else {
		srvs = []*testenv.Server{testenv.NewServer(t, topupOptions(box))}
	}
	// Each call holds about $0.025 (16,384 output tokens at most), so
	// each one alone takes the available balance below $5.00.
	p := topupAccount(t, srvs[0], "ada@example.com", "4242", 5.01, "100")
	k, secret, err := srvs[0].Store.CreateAPIKey(context.Background(), p.account, models.AdminCLI, models.KeyInput{Name: "load", RPM: "1000"})
	if err != nil {
		t.Fatal(err)
	}
	_ = k
	if len(p.topups()) != 0 {
		t.Fatal("a top-up before any call")
	}

	const calls = 200
	var wg sync.WaitGroup
	status := make(chan int, calls)
	stop := make(chan struct{})
	var rounds sync.WaitGroup
	for i := 0; i < 4; i++ { // billing rounds on every instance while the calls run
		rounds.Add(1)
		go func() {
			defer rounds.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				srvs[i%len(srvs)].App.BillingRound(context.Background())
			}
		}()
	}
	for i := 0; i < calls; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv := srvs[i%len(srvs)]
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(chatBody("tt-chat-small", 16384, nil)))
			req.Header.Set("Authorization", "Bearer "+secret)
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			testenv.Body(t, res)
			status <- res.StatusCode
		}()
	}
	wg.Wait()
	close(stop)
	rounds.Wait()
	close(status)
	for s := range status {
		if s != http.StatusOK {
			t.Fatalf("a call answered %d", s)
		}
	}
	for i := 0; i < 3; i++ {
		for _, srv := range srvs {
			srv.App.BillingRound(context.Background())
		}
	}

	tops := p.topups()
	if len(tops) != 1 {
		t.Fatalf("%d top-ups for one crossing, want exactly 1", len(tops))
	}
	top := tops[0]
	if top.Status != models.PaymentPaid || top.AmountMicros != 20*models.MicrosPerUSD || top.ReceiptNumber == nil || *top.ReceiptNumber != 1 {
		t.Fatalf("top-up %+v, want $20.00 paid with receipt 1", top)
	}
	if recharges := p.ledgerKinds()[models.LedgerRecharge]; recharges != 1 {
		t.Fatalf("%d recharge credits in the ledger, want 1", recharges)
	}
	w := p.srv.Store
	wallet, _ := w.WalletOf(context.Background(), p.account)
	if bal := p.balance(); bal <= 20*models.MicrosPerUSD || bal > 25_010_000 || wallet.HeldMicros != 0 {
		t.Fatalf("balance %s held %s: want $5.01 + $20.00 less the calls' charges", models.FormatUSD(bal), models.FormatUSD(wallet.HeldMicros))
	}
	st, _ := w.WalletStatesOf(context.Background(), p.account)
	if st.TopupState != models.TopupArmed {
		t.Fatalf("wallet top-up state %q after the credit, want armed for the next crossing", st.TopupState)
	}
	if mails := box.with("Receipt 000001"); len(mails) != 1 || mails[0].to != "ada@example.com" ||
		!strings.Contains(mails[0].text, "$20.00") || !strings.Contains(mails[0].text, "Visa •••• 4242") {
		t.Fatalf("receipt mails: %+v, want one to ada@example.com for $20.00 on Visa •••• 4242", mails)
	}

	// Billing shows it, with its receipt.
	_, text := p.billingDoc()
	if row := text(`tr[data-kind="Auto top-up"]`); !strings.Contains(row, "$20.00") || !strings.Contains(row, "Paid") || !strings.Contains(row, "Receipt 000001") {
		t.Fatalf("the payments table's auto top-up row: %q", row)
	}
}

// stripeSigned posts a Stripe-format event to the webhook, signed with
// the server's secret, and returns its outcome.
func stripeSigned(t *testing.T, srv *testenv.Server, id, typ string, object map[string]any) string {
	t.Helper()
	b := []byte(fmt.Sprintf(`{"id":%q,"object":"event","type":%q,"livemode":false,"created":%d,"data":{"object":%s}}`,
		id, typ, time.Now().Unix(), mustJSON(t, object)))
	now := time.Now()
	status, body := postWebhook(t, srv, b, fmt.Sprintf("t=%d,v1=%s", now.Unix(), stripeSig(b, testWebhookSecret, now)))
	if status != http.StatusOK {
		t.Fatalf("webhook %s %s: %d %s", typ, id, status, body)
	}
	return body
}

// TestAutoTopupEventsReplayedAndOutOfOrder: an auto top-up's
// payment_intent events delivered again, late, or in the wrong order
// credit it exactly once.
func TestAutoTopupEventsReplayedAndOutOfOrder(t *testing.T) {
	box := &mailbox{}
	srv := testenv.NewServer(t, topupOptions(box))
	p := topupAccount(t, srv, "ada@example.com", "4242", 6, "100")
	p.credit(-1.50) // below $5: due
	p.round()
	tops := p.topups()
	if len(tops) != 1 || tops[0].Status != models.PaymentPaid || tops[0].IntentID == nil {
		t.Fatalf("top-ups %+v, want one paid with its PaymentIntent", tops)
	}
	pi := *tops[0].IntentID
	balance := p.balance()
	intent := func(status string, lastErr map[string]any) map[string]any {
		o := map[string]any{"id": pi, "object": "payment_intent", "amount": 2000, "currency": "usd", "status": status,
			"metadata": map[string]string{"payment_id": tops[0].ID}}
		if lastErr != nil {
			o["last_payment_error"] = lastErr
		}
		return o
	}
	for _, ev := range []struct{ id, typ, status, want string }{
		{"evt_test_replay_1", "payment_intent.succeeded", "succeeded", models.EventAlreadyPaid},
		{"evt_test_replay_1", "payment_intent.succeeded", "succeeded", models.EventDuplicate},
		{"evt_test_late_fail", "payment_intent.payment_failed", "requires_payment_method", models.EventNoChange},
		{"evt_test_late_action", "payment_intent.requires_action", "requires_action", models.EventNoChange},
	} {
		var lastErr map[string]any
		if ev.status != "succeeded" {
			lastErr = map[string]any{"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds"}
		}
		if body := stripeSigned(t, srv, ev.id, ev.typ, intent(ev.status, lastErr)); !strings.Contains(body, `"outcome":"`+ev.want+`"`) {
			t.Fatalf("%s %s: %s, want %s", ev.typ, ev.id, body, ev.want)
		}
	}
	if got := p.balance(); got != balance {
		t.Fatalf("balance moved from %s to %s on replayed events", models.FormatUSD(balance), models.FormatUSD(got))
	}
	if st := p.status(tops[0].ID); st != models.PaymentPaid {
		t.Fatalf("a late failure changed the paid top-up to %s", st)
	}
	if p.round(); len(box.with("Receipt")) != 1 || len(box.with("declined")) != 0 {
		t.Fatalf("mails %+v: want one receipt and no decline", box.with(""))
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
