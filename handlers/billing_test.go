package handlers_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82"

	"ttconsole/handlers"
	"ttconsole/internal/payments"
	"ttconsole/internal/testenv"
	"ttconsole/models"
)

const testWebhookSecret = "whsec_test_billing_secret"

// payer is a signed-in customer of a test server.
type payer struct {
	*browser
	account string
}

func newPayer(t *testing.T, srv *testenv.Server, email string) *payer {
	t.Helper()
	b := newBrowser(t, srv)
	if res := b.signup(email, "correct horse battery"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign up %s: %d", email, res.StatusCode)
	}
	u, err := srv.Store.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return &payer{browser: b, account: u.AccountID}
}

// recharge submits the recharge form and returns the answer.
func (p *payer) recharge(amount string) (*http.Response, string) {
	p.t.Helper()
	return p.post("/billing", "/billing/recharge", url.Values{"amount_usd": {amount}})
}

// checkout recharges amount and returns the payment and its test checkout
// session id.
func (p *payer) checkout(amount string) (*models.Payment, string) {
	p.t.Helper()
	res, body := p.recharge(amount)
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/billing/test-checkout/cs_test_") {
		p.t.Fatalf("recharge %s: %d to %q\n%s", amount, res.StatusCode, loc, body)
	}
	sid := strings.TrimPrefix(loc, "/billing/test-checkout/")
	pay, err := p.srv.Store.PaymentBySession(context.Background(), p.account, sid)
	if err != nil {
		p.t.Fatal(err)
	}
	return pay, sid
}

func (p *payer) testAction(sid, action string) *http.Response {
	p.t.Helper()
	res, _ := p.post("/billing/test-checkout/"+sid, "/billing/test-checkout/"+sid, url.Values{"action": {action}})
	return res
}

func (p *payer) balance() int64 {
	p.t.Helper()
	w, err := p.srv.Store.WalletOf(context.Background(), p.account)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.srv.Store.LedgerInvariant(context.Background(), p.account); err != nil {
		p.t.Fatalf("ledger invariant: %v", err)
	}
	return w.BalanceMicros
}

func (p *payer) status(id string) string {
	p.t.Helper()
	pay, err := p.srv.Store.PaymentOf(context.Background(), p.account, id)
	if err != nil {
		p.t.Fatal(err)
	}
	return pay.Status
}

// stripeSig signs payload as Stripe does: v1 = HMAC-SHA256("t.payload").
func stripeSig(payload []byte, secret string, at time.Time) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "%d.%s", at.Unix(), payload)
	return hex.EncodeToString(m.Sum(nil))
}

func checkoutEvent(id, typ, session, ref string, cents int64, paymentStatus string) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": id, "object": "event", "type": typ, "livemode": false, "created": time.Now().Unix(),
		"data": map[string]any{"object": map[string]any{
			"id": session, "object": "checkout.session", "client_reference_id": ref, "amount_total": cents,
			"currency": "usd", "payment_status": paymentStatus, "status": "complete", "mode": "payment",
		}},
	})
	return b
}

func postWebhook(t *testing.T, srv *testenv.Server, payload []byte, sig string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/stripe", strings.NewReader(string(payload)))
	req.Header.Set("Content-Type", "application/json")
	if sig != "" {
		req.Header.Set("Stripe-Signature", sig)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, testenv.Body(t, res)
}

func newBillingServer(t *testing.T) *testenv.Server {
	return testenv.NewServer(t, testenv.Options{Config: handlers.Config{StripeWebhookSecrets: []string{testWebhookSecret}}})
}

// TestWebhookSignature is the signature table: only a v1 HMAC of
// "t.payload" under our secret, at most five minutes old and not from the
// future, is accepted; anything else is a 400 that writes nothing.
func TestWebhookSignature(t *testing.T) {
	srv := newBillingServer(t)
	p := newPayer(t, srv, "ada@example.com")
	pay, sid := p.checkout("25")
	now := time.Now()
	ts := func(at time.Time) string { return strconv.FormatInt(at.Unix(), 10) }

	n := 0
	fresh := func() []byte {
		n++
		return checkoutEvent(fmt.Sprintf("evt_sig_%d", n), models.EventCheckoutCompleted, sid, pay.ID, 2500, "paid")
	}
	for _, tc := range []struct {
		name   string
		header func(payload []byte) string
		body   func(payload []byte) []byte
		want   int
	}{
		{"wrong secret", func(b []byte) string { return "t=" + ts(now) + ",v1=" + stripeSig(b, "whsec_other", now) }, nil, 400},
		{"tampered body", func(b []byte) string { return "t=" + ts(now) + ",v1=" + stripeSig(b, testWebhookSecret, now) },
			func(b []byte) []byte {
				return []byte(strings.Replace(string(b), `"amount_total":2500`, `"amount_total":2501`, 1))
			}, 400},
		{"too old", func(b []byte) string {
			at := now.Add(-6 * time.Minute)
			return "t=" + ts(at) + ",v1=" + stripeSig(b, testWebhookSecret, at)
		}, nil, 400},
		{"in the future", func(b []byte) string {
			at := now.Add(2 * time.Minute)
			return "t=" + ts(at) + ",v1=" + stripeSig(b, testWebhookSecret, at)
		}, nil, 400},
		{"missing header", func([]byte) string { return "" }, nil, 400},
		{"only v0", func(b []byte) string { return "t=" + ts(now) + ",v0=" + stripeSig(b, testWebhookSecret, now) }, nil, 400},
		{"no timestamp", func(b []byte) string { return "v1=" + stripeSig(b, testWebhookSecret, now) }, nil, 400},
		{"timestamp not signed", func(b []byte) string {
			return "t=" + ts(now) + ",v1=" + stripeSig(b, testWebhookSecret, now.Add(-time.Minute))
		}, nil, 400},
		{"two v1, one valid", func(b []byte) string {
			return "t=" + ts(now) + ",v1=" + stripeSig(b, "whsec_old", now) + ",v1=" + stripeSig(b, testWebhookSecret, now)
		}, nil, 200},
	} {
		events := func() int {
			t.Helper()
			evs, err := srv.Store.PaymentEvents(context.Background(), pay.ID)
			if err != nil {
				t.Fatal(err)
			}
			return len(evs)
		}
		t.Run(tc.name, func(t *testing.T) {
			before := events()
			payload := fresh()
			header := tc.header(payload)
			if tc.body != nil {
				payload = tc.body(payload)
			}
			status, body := postWebhook(t, srv, payload, header)
			if status != tc.want {
				t.Fatalf("status %d, want %d: %s", status, tc.want, body)
			}
			after := events()
			if tc.want == 400 {
				if after != before || p.balance() != 0 || p.status(pay.ID) != models.PaymentPending {
					t.Fatalf("a refused event wrote something: %d events (was %d), balance %d", after, before, p.balance())
				}
				if !strings.Contains(body, `"type":"invalid_signature"`) {
					t.Errorf("body %s lacks the error type", body)
				}
			}
		})
	}
	if p.balance() != 25*models.MicrosPerUSD || p.status(pay.ID) != models.PaymentPaid {
		t.Fatalf("after the valid event: balance %d, status %s", p.balance(), p.status(pay.ID))
	}
}

// TestWebhookConcurrentDeliveries sends one event ten times at once: all
// answer 2xx, one credits.
func TestWebhookConcurrentDeliveries(t *testing.T) {
	srv := newBillingServer(t)
	p := newPayer(t, srv, "ada@example.com")
	pay, sid := p.checkout("50")
	payload := checkoutEvent("evt_concurrent", models.EventCheckoutCompleted, sid, pay.ID, 5000, "paid")

	var wg sync.WaitGroup
	outcomes := make(chan string, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			now := time.Now()
			status, body := postWebhook(t, srv, payload, "t="+strconv.FormatInt(now.Unix(), 10)+",v1="+stripeSig(payload, testWebhookSecret, now))
			if status != http.StatusOK {
				t.Errorf("delivery: %d %s", status, body)
			}
			var out struct{ Outcome string }
			json.Unmarshal([]byte(body), &out)
			outcomes <- out.Outcome
		}()
	}
	wg.Wait()
	close(outcomes)
	got := map[string]int{}
	for o := range outcomes {
		got[o]++
	}
	if got[models.EventCredited] != 1 || got[models.EventDuplicate] != 9 {
		t.Errorf("outcomes %v, want 1 credited and 9 duplicates", got)
	}
	if b := p.balance(); b != 50*models.MicrosPerUSD {
		t.Errorf("balance %s, want $50", models.FormatUSD(b))
	}
}

// TestWebhookEventOrder: an async success before the completed event, and
// a completed-but-unpaid event, over HTTP.
func TestWebhookEventOrder(t *testing.T) {
	srv := newBillingServer(t)
	p := newPayer(t, srv, "ada@example.com")
	deliver := func(id, typ, sid, ref string, cents int64, ps string) {
		t.Helper()
		b := checkoutEvent(id, typ, sid, ref, cents, ps)
		now := time.Now()
		if status, body := postWebhook(t, srv, b, "t="+strconv.FormatInt(now.Unix(), 10)+",v1="+stripeSig(b, testWebhookSecret, now)); status != 200 {
			t.Fatalf("%s: %d %s", id, status, body)
		}
	}
	a, asid := p.checkout("10")
	deliver("evt_a1", models.EventAsyncPaymentSucceeded, asid, a.ID, 1000, "paid")
	deliver("evt_a2", models.EventCheckoutCompleted, asid, a.ID, 1000, "paid")
	if b := p.balance(); b != 10*models.MicrosPerUSD {
		t.Fatalf("async before completed: balance %s, want $10", models.FormatUSD(b))
	}

	u, usid := p.checkout("25")
	deliver("evt_u1", models.EventCheckoutCompleted, usid, u.ID, 2500, "unpaid")
	if b, st := p.balance(), p.status(u.ID); b != 10*models.MicrosPerUSD || st != models.PaymentPending {
		t.Fatalf("completed unpaid: balance %s, status %s; want $10 and pending", models.FormatUSD(b), st)
	}
	deliver("evt_u2", models.EventAsyncPaymentSucceeded, usid, u.ID, 2500, "paid")
	if b, st := p.balance(), p.status(u.ID); b != 35*models.MicrosPerUSD || st != models.PaymentPaid {
		t.Fatalf("after the async success: balance %s, status %s; want $35 and paid", models.FormatUSD(b), st)
	}
	// An event for a checkout that is not ours is acknowledged and ignored.
	deliver("evt_x", models.EventCheckoutCompleted, "cs_unknown", "pay_unknown", 2500, "paid")
	if b := p.balance(); b != 35*models.MicrosPerUSD {
		t.Fatalf("unknown checkout changed the balance to %s", models.FormatUSD(b))
	}
}

func TestRechargeRejectsBadAmounts(t *testing.T) {
	srv := newBillingServer(t)
	p := newPayer(t, srv, "ada@example.com")
	for _, tc := range []struct{ in, msg string }{
		{"", "Enter an amount"},
		{"abc", "Enter an amount"},
		{"1e3", "Enter an amount"},
		{"4.99", "The smallest recharge is $5.00."},
		{"10000.01", "The largest recharge is $10,000.00."},
		{"12.345", "at most two decimals"},
		{"-10", "Enter a positive amount."},
	} {
		res, body := p.recharge(tc.in)
		if res.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("%q: status %d, want 422", tc.in, res.StatusCode)
			continue
		}
		msg := testenv.Doc(t, body).Find(`.field-error[data-field=amount_usd]`).Text()
		if !strings.Contains(msg, tc.msg) {
			t.Errorf("%q: message beside the field %q, want %q", tc.in, msg, tc.msg)
		}
		if v := testenv.FieldValue(t, body, "amount_usd"); v != tc.in {
			t.Errorf("%q: the field shows %q, want what was typed", tc.in, v)
		}
	}
	if pays, err := srv.Store.RecentPayments(context.Background(), p.account, 100); err != nil || len(pays) != 0 {
		t.Fatalf("%d payments created by bad input (%v)", len(pays), err)
	}
}

// TestRechargeWithTestProvider walks the test provider: checkout marked
// TEST MODE, Pay credits exactly the amount once, Fail and Cancel credit
// nothing, and a finished checkout cannot be paid again.
func TestRechargeWithTestProvider(t *testing.T) {
	srv := testenv.NewServer(t) // no secrets configured: a generated one signs
	p := newPayer(t, srv, "ada@example.com")

	pay, sid := p.checkout("$25.50")
	_, page := p.get("/billing/test-checkout/" + sid)
	doc := testenv.Doc(t, page)
	if !strings.Contains(doc.Find(".testmode-label").Text(), "TEST MODE") || !strings.Contains(page, "$25.50") {
		t.Fatalf("test checkout page is not marked TEST MODE with the amount:\n%s", page)
	}
	res := p.testAction(sid, "pay")
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || loc != "/billing?payment="+pay.ID+"&checkout=success" {
		t.Fatalf("pay: %d to %q", res.StatusCode, loc)
	}
	if b := p.balance(); b != 25_500_000 {
		t.Fatalf("balance %s, want $25.50", models.FormatUSD(b))
	}
	_, page = p.get("/billing?payment=" + pay.ID + "&checkout=success")
	doc = testenv.Doc(t, page)
	if got := doc.Find(`[data-testid=billing-balance]`).Text(); got != "$25.50" {
		t.Errorf("billing page balance %q, want $25.50", got)
	}
	if got := doc.Find(`tr[data-payment="` + pay.ID + `"] [data-testid=payment-status]`).Text(); got != "Paid" {
		t.Errorf("payment row status %q, want paid", got)
	}
	if !strings.Contains(doc.Find(`[data-testid=returned]`).Text(), "Payment received") {
		t.Errorf("no notice of the received payment")
	}
	if href, _ := doc.Find(`table[data-testid=ledger] a[href="/billing/payments/` + pay.ID + `"]`).Attr("href"); href == "" {
		t.Errorf("the recharge ledger entry does not link to its payment")
	}
	// Paying a finished checkout again changes nothing.
	if res := p.testAction(sid, "pay"); res.StatusCode != http.StatusSeeOther || p.balance() != 25_500_000 {
		t.Fatalf("second pay: %d, balance %d", res.StatusCode, p.balance())
	}

	fail, fsid := p.checkout("10")
	p.testAction(fsid, "fail")
	cancel, csid := p.checkout("10")
	back := p.testAction(csid, "cancel").Header.Get("Location")
	_, page = p.get(back)
	if p.status(fail.ID) != models.PaymentFailed || p.status(cancel.ID) != models.PaymentCancelled || p.balance() != 25_500_000 {
		t.Fatalf("fail → %s, cancel → %s, balance %d", p.status(fail.ID), p.status(cancel.ID), p.balance())
	}
	// A cancelled checkout reads "Cancelled", not "expired".
	doc = testenv.Doc(t, page)
	if got := doc.Find(`tr[data-payment="` + cancel.ID + `"] [data-testid=payment-status]`).Text(); got != "Cancelled" {
		t.Errorf("the cancelled payment's status reads %q, want Cancelled", got)
	}
	if got := doc.Find(`[data-testid=returned]`).Text(); !strings.Contains(got, "was cancelled") {
		t.Errorf("back from a cancelled checkout the notice reads %q", got)
	}
	if strings.Contains(strings.ToLower(doc.Find(`#payments`).Text()), "expired") {
		t.Error("the payments list calls a cancelled checkout expired")
	}
	_, page = p.get("/billing/payments/" + cancel.ID)
	if got := testenv.Doc(t, page).Find(`[data-testid=payment-status]`).Text(); got != "Cancelled" {
		t.Errorf("the cancelled payment's page says %q", got)
	}
	_, page = p.get("/billing/test-checkout/" + csid)
	if got := testenv.Doc(t, page).Find(`[data-testid=checkout-closed]`).Text(); !strings.Contains(got, "closed") {
		t.Errorf("the cancelled test checkout says %q", got)
	}
	_, page = p.get("/billing/payments/" + fail.ID)
	if got := testenv.Doc(t, page).Find(`table[data-testid=payment-events] tr`).Length(); got != 3 {
		t.Errorf("failed payment page lists %d rows of events, want a header and 2 events", got)
	}
}

// TestRecheckPendingPayment: a webhook that never arrived is made good by
// the re-check button, once.
func TestRecheckPendingPayment(t *testing.T) {
	srv := testenv.NewServer(t)
	p := newPayer(t, srv, "ada@example.com")
	pay, sid := p.checkout("30")
	// The customer paid, but the event was lost on its way.
	if _, err := srv.Store.SetTestCheckout(context.Background(), sid, models.CheckoutComplete, "paid"); err != nil {
		t.Fatal(err)
	}
	_, page := p.get("/billing")
	if testenv.Doc(t, page).Find(`form[action="/billing/payments/`+pay.ID+`/recheck"]`).Length() != 1 {
		t.Fatalf("the pending payment has no re-check button")
	}
	for range 2 {
		res, _ := p.post("/billing/payments/"+pay.ID, "/billing/payments/"+pay.ID+"/recheck", nil)
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("re-check: %d", res.StatusCode)
		}
	}
	if b, st := p.balance(), p.status(pay.ID); b != 30*models.MicrosPerUSD || st != models.PaymentPaid {
		t.Fatalf("after re-check: balance %s, status %s", models.FormatUSD(b), st)
	}
}

// TestPaymentsOfAnotherAccountAre404: payment pages, re-checks and test
// checkouts of another account answer 404 and change nothing.
func TestPaymentsOfAnotherAccountAre404(t *testing.T) {
	srv := testenv.NewServer(t)
	ada := newPayer(t, srv, "ada@example.com")
	pay, sid := ada.checkout("20")
	bob := newPayer(t, srv, "bob@example.com")
	for _, path := range []string{"/billing/payments/" + pay.ID, "/billing/test-checkout/" + sid, "/billing/payments/pay_nope"} {
		if res, _ := bob.get(path); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s as another account: %d, want 404", path, res.StatusCode)
		}
	}
	res, _ := bob.post("/billing", "/billing/test-checkout/"+sid, url.Values{"action": {"pay"}})
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("pay another account's checkout: %d, want 404", res.StatusCode)
	}
	res, _ = bob.post("/billing", "/billing/payments/"+pay.ID+"/recheck", nil)
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("re-check another account's payment: %d, want 404", res.StatusCode)
	}
	if ada.status(pay.ID) != models.PaymentPending || ada.balance() != 0 || bob.balance() != 0 {
		t.Fatal("another account's requests changed the payment")
	}
}

func TestLowBalanceBannerAndPrefill(t *testing.T) {
	srv := testenv.NewServer(t)
	p := newPayer(t, srv, "ada@example.com")
	banner := func() bool {
		_, page := p.get("/")
		return testenv.Doc(t, page).Find(`.banner.warn`).Length() > 0
	}
	if banner() {
		t.Fatal("banner shown with no threshold set")
	}
	res, body := p.post("/billing", "/billing/low-balance", url.Values{"low_balance_usd": {"1.234"}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(testenv.Doc(t, body).Find(`.field-error[data-field=low_balance_usd]`).Text(), "two decimals") {
		t.Fatalf("bad threshold: %d", res.StatusCode)
	}
	if res, _ := p.post("/billing", "/billing/low-balance", url.Values{"low_balance_usd": {"20"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("set threshold: %d", res.StatusCode)
	}
	if !banner() {
		t.Fatal("no banner below the threshold")
	}
	_, sid := p.checkout("25")
	p.testAction(sid, "pay")
	if banner() {
		t.Fatal("banner still shown above the threshold")
	}

	for in, want := range map[string]string{"0.000123": "5", "12.341": "12.35", "250": "250", "junk": ""} {
		_, page := p.get("/billing?amount_usd=" + url.QueryEscape(in))
		if got := testenv.FieldValue(t, page, "amount_usd"); got != want {
			t.Errorf("prefill %q: field shows %q, want %q", in, got, want)
		}
	}
}

func TestLedgerPages(t *testing.T) {
	srv := testenv.NewServer(t)
	p := newPayer(t, srv, "ada@example.com")
	for i := range 30 {
		if _, err := srv.Store.Credit(context.Background(), p.account, int64(i+1)*models.MicrosPerUSD, models.LedgerAdjustment, fmt.Sprint("entry ", i), models.LedgerRef{}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	path, pages := "/billing", 0
	for path != "" {
		_, page := p.get(path)
		doc := testenv.Doc(t, page)
		rows := doc.Find(`table[data-testid=ledger] tr[data-entry]`)
		for i := range rows.Length() {
			id, _ := rows.Eq(i).Attr("data-entry")
			if seen[id] {
				t.Fatalf("entry %s on two pages", id)
			}
			seen[id] = true
		}
		pages++
		path, _ = doc.Find(`nav.pager a[rel=next]`).Attr("href")
		if pages > 3 {
			t.Fatal("pagination does not end")
		}
	}
	if len(seen) != 30 || pages != 2 {
		t.Fatalf("%d entries on %d pages, want 30 on 2", len(seen), pages)
	}

	// A page link that is not one says so, and shows the newest entries
	// rather than an empty ledger.
	_, page := p.get("/billing?cursor=garbage")
	doc := testenv.Doc(t, page)
	if doc.Find(`[data-testid=cursor-invalid]`).Length() != 1 || doc.Find(`table[data-testid=ledger] tr[data-entry]`).Length() != 25 ||
		strings.Contains(page, "The ledger is empty") {
		t.Fatal("/billing?cursor=garbage does not say the link is invalid and show the newest entries")
	}
}

// fakeStripe is the part of Stripe's API the provider uses.
type fakeStripe struct {
	mu      sync.Mutex
	created url.Values
	status  string
}

func (f *fakeStripe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/checkout/sessions":
		b, _ := io.ReadAll(r.Body)
		f.created, _ = url.ParseQuery(string(b))
		json.NewEncoder(w).Encode(map[string]any{
			"id": "cs_test_fake1", "object": "checkout.session", "url": "https://checkout.stripe.com/c/pay/cs_test_fake1",
			"client_reference_id": f.created.Get("client_reference_id"), "status": "open", "payment_status": "unpaid",
			"amount_total": 2500, "currency": "usd", "mode": "payment",
		})
	case r.Method == http.MethodGet && r.URL.Path == "/v1/checkout/sessions/cs_test_fake1":
		json.NewEncoder(w).Encode(map[string]any{
			"id": "cs_test_fake1", "object": "checkout.session", "status": f.status, "payment_status": "paid",
			"amount_total": 2500, "currency": "usd", "client_reference_id": f.created.Get("client_reference_id"),
		})
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"type":"invalid_request_error","message":"no such route"}}`)
	}
}

// TestStripeProvider opens a Checkout Session through stripe-go against a
// fake Stripe API, and credits it by re-checking.
func TestStripeProvider(t *testing.T) {
	fake := &fakeStripe{status: "complete"}
	api := httptest.NewServer(fake)
	t.Cleanup(api.Close)
	retries := int64(0)
	prov := payments.NewStripeProvider("sk_test_fake", stripe.WithBackends(stripe.NewBackendsWithConfig(&stripe.BackendConfig{
		URL: stripe.String(api.URL), MaxNetworkRetries: &retries,
	})))
	srv := testenv.NewServer(t, testenv.Options{Config: handlers.Config{StripeWebhookSecrets: []string{testWebhookSecret}}, Payments: prov})
	p := newPayer(t, srv, "ada@example.com")

	res, _ := p.get("/billing")
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://checkout.stripe.com") {
		t.Errorf("billing page CSP %q does not let the recharge form reach Stripe Checkout", csp)
	}
	_, page := p.get("/billing")
	if testenv.Doc(t, page).Find(`[data-testid=test-mode]`).Length() != 0 {
		t.Error("TEST MODE shown with Stripe configured")
	}
	res, body := p.recharge("25")
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || loc != "https://checkout.stripe.com/c/pay/cs_test_fake1" {
		t.Fatalf("recharge: %d to %q\n%s", res.StatusCode, loc, body)
	}
	pay, err := srv.Store.PaymentBySession(context.Background(), p.account, "cs_test_fake1")
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"mode": "payment", "client_reference_id": pay.ID,
		"line_items[0][price_data][unit_amount]": "2500", "line_items[0][price_data][currency]": "usd",
		"line_items[0][quantity]": "1", "metadata[payment_id]": pay.ID,
	} {
		if got := fake.created.Get(k); got != want {
			t.Errorf("Checkout Session %s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"success_url", "cancel_url"} {
		if u := fake.created.Get(k); !strings.HasPrefix(u, srv.URL+"/billing?payment="+pay.ID) {
			t.Errorf("%s = %q, want back to /billing", k, u)
		}
	}
	if res, _ := p.post("/billing/payments/"+pay.ID, "/billing/payments/"+pay.ID+"/recheck", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("re-check: %d", res.StatusCode)
	}
	// The webhook arrives after the re-check: acknowledged, not credited again.
	b := checkoutEvent("evt_after_recheck", models.EventCheckoutCompleted, "cs_test_fake1", pay.ID, 2500, "paid")
	now := time.Now()
	if status, body := postWebhook(t, srv, b, "t="+strconv.FormatInt(now.Unix(), 10)+",v1="+stripeSig(b, testWebhookSecret, now)); status != 200 || !strings.Contains(body, models.EventAlreadyPaid) {
		t.Fatalf("webhook after re-check: %d %s", status, body)
	}
	if bal, st := p.balance(), p.status(pay.ID); bal != 25*models.MicrosPerUSD || st != models.PaymentPaid {
		t.Fatalf("balance %s, status %s; want $25 and paid", models.FormatUSD(bal), st)
	}
}
