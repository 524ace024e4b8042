package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
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

// cardStripe is the part of Stripe's API that saved cards and off-session
// PaymentIntents use: customers, Checkout in setup mode, SetupIntents,
// PaymentMethods and PaymentIntents, with idempotency keys kept as Stripe
// keeps them (a key seen before returns what it made).
type cardStripe struct {
	mu        sync.Mutex
	customers int
	sessions  []url.Values
	intents   map[string]map[string]any // by id
	byKey     map[string]string         // idempotency key -> intent id
	creates   []url.Values              // every PaymentIntent create, retries included
	keys      []string
	failNext  bool   // the next create makes its intent, then answers 500
	status    string // the status of intents made from now on
}

func newCardStripe(t *testing.T) (*cardStripe, payments.Provider) {
	f := &cardStripe{intents: map[string]map[string]any{}, byKey: map[string]string{}, status: "processing"}
	api := httptest.NewServer(f)
	t.Cleanup(api.Close)
	retries := int64(0)
	return f, payments.NewStripeProvider("sk_test_fake", stripe.WithBackends(stripe.NewBackendsWithConfig(&stripe.BackendConfig{
		URL: stripe.String(api.URL), MaxNetworkRetries: &retries,
	})))
}

func (f *cardStripe) set(id, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.intents[id]["status"] = status
}

func (f *cardStripe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	b, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(b))
	card := map[string]any{"id": "pm_fake1", "object": "payment_method", "customer": "cus_fake1", "created": 1700000000,
		"card": map[string]any{"brand": "visa", "last4": "4242", "exp_month": 8, "exp_year": 2031}}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/customers":
		f.customers++
		json.NewEncoder(w).Encode(map[string]any{"id": "cus_fake1", "object": "customer", "email": form.Get("email")})
	case r.Method == http.MethodPost && r.URL.Path == "/v1/checkout/sessions":
		f.sessions = append(f.sessions, form)
		json.NewEncoder(w).Encode(map[string]any{"id": "cs_fake_setup1", "object": "checkout.session", "mode": "setup",
			"url": "https://checkout.stripe.com/c/pay/cs_fake_setup1", "status": "open"})
	case r.Method == http.MethodGet && r.URL.Path == "/v1/setup_intents/seti_fake1":
		json.NewEncoder(w).Encode(map[string]any{"id": "seti_fake1", "object": "setup_intent", "customer": "cus_fake1",
			"payment_method": card, "status": "succeeded", "created": 1700000000})
	case r.Method == http.MethodGet && r.URL.Path == "/v1/payment_methods/pm_fake1":
		json.NewEncoder(w).Encode(card)
	case r.Method == http.MethodGet && r.URL.Path == "/v1/payment_methods/pm_fake_old":
		json.NewEncoder(w).Encode(map[string]any{"id": "pm_fake_old", "object": "payment_method", "customer": "cus_fake1",
			"card": map[string]any{"brand": "mastercard", "last4": "1111", "exp_month": 1, "exp_year": 2030}})
	case r.Method == http.MethodPost && r.URL.Path == "/v1/payment_intents":
		key := r.Header.Get("Idempotency-Key")
		f.creates, f.keys = append(f.creates, form), append(f.keys, key)
		id, seen := f.byKey[key]
		if !seen {
			id = fmt.Sprintf("pi_fake_%d", len(f.intents)+1)
			f.byKey[key] = id
			f.intents[id] = map[string]any{"id": id, "object": "payment_intent", "amount": 2000, "currency": "usd",
				"status": f.status, "customer": form.Get("customer"), "payment_method": form.Get("payment_method"),
				"metadata": map[string]string{"payment_id": form.Get("metadata[payment_id]")}}
			if f.failNext {
				f.failNext = false
				w.WriteHeader(http.StatusInternalServerError)
				io.WriteString(w, `{"error":{"type":"api_error","message":"An error occurred with our connection to Stripe."}}`)
				return
			}
		}
		json.NewEncoder(w).Encode(f.intents[id])
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/payment_intents/"):
		if pi, ok := f.intents[strings.TrimPrefix(r.URL.Path, "/v1/payment_intents/")]; ok {
			json.NewEncoder(w).Encode(pi)
			return
		}
		fallthrough
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":{"type":"invalid_request_error","message":"no such route %s %s"}}`, r.Method, r.URL.Path)
	}
}

// TestAutoTopupWithStripeRetriesAndRestart: with Stripe, the card is saved
// from the setup's webhook events; the top-up's PaymentIntent is made
// off-session with the payment's idempotency key, so a create that timed
// out and is tried again charges once; and a top-up whose outcome arrives
// only after its instance stopped is credited once, by the webhook on
// another instance or by that instance's re-check, whatever the order and
// number of events.
func TestAutoTopupWithStripeRetriesAndRestart(t *testing.T) {
	fake, prov := newCardStripe(t)
	box := &mailbox{}
	opts := topupOptions(box)
	opts.Payments = prov
	adjust := opts.Adjust
	opts.Adjust = func(a *handlers.App) {
		adjust(a)
		a.TopupChargeRetry = time.Millisecond
	}
	srvs := testenv.Instances(t, 2, opts)
	a, b := srvs[0], srvs[1]

	// The account saves a card and turns auto top-up on, at $6.
	p1 := newPayer(t, a, "ada@example.com")
	res, body := p1.post("/billing", "/billing/payment-method", nil)
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || loc != "https://checkout.stripe.com/c/pay/cs_fake_setup1" {
		t.Fatalf("save a card with Stripe: %d to %q\n%s", res.StatusCode, loc, body)
	}
	if s := fake.sessions[0]; s.Get("mode") != "setup" || s.Get("customer") != "cus_fake1" || s.Get("client_reference_id") != p1.account {
		t.Fatalf("the Checkout Session: %v, want setup mode for the account's customer", s)
	}
	saveCard := func(p *payer, evt string) {
		t.Helper()
		body := stripeSigned(t, a, evt, "checkout.session.completed", map[string]any{"id": "cs_fake_setup1", "object": "checkout.session",
			"mode": "setup", "status": "complete", "customer": "cus_fake1", "client_reference_id": p.account, "setup_intent": "seti_fake1"})
		if !strings.Contains(body, models.EventCardSaved) {
			t.Fatalf("setup completed: %s", body)
		}
	}
	saveCard(p1, "evt_setup_1")
	if body := stripeSigned(t, a, "evt_setup_2", "setup_intent.succeeded", map[string]any{"id": "seti_fake1", "object": "setup_intent",
		"customer": "cus_fake1", "payment_method": "pm_fake1", "status": "succeeded", "created": 1700000000}); !strings.Contains(body, models.EventCardSaved) {
		t.Fatalf("setup_intent.succeeded: %s", body)
	}
	// An older setup, delivered late, does not replace the card.
	if body := stripeSigned(t, a, "evt_setup_old", "setup_intent.succeeded", map[string]any{"id": "seti_fake_old", "object": "setup_intent",
		"customer": "cus_fake1", "payment_method": "pm_fake_old", "status": "succeeded", "created": 1600000000}); !strings.Contains(body, models.EventCardStale) {
		t.Fatalf("an older setup: %s, want %s", body, models.EventCardStale)
	}
	if _, text := p1.billingDoc(); !strings.Contains(text(`[data-testid=saved-card]`), "Visa •••• 4242, expires 08/2031") {
		t.Fatalf("saved card: %q", text(`[data-testid=saved-card]`))
	}
	p1.credit(6)
	if res, body := p1.setTopup("on", "5", "20", "100"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("auto top-up: %d\n%s", res.StatusCode, body)
	}

	// The first create times out after Stripe made the PaymentIntent; the
	// retry finds the same one.
	fake.failNext = true
	p1.credit(-1.50)
	a.App.BillingRound(context.Background())
	tops := p1.topups()
	if len(tops) != 1 || tops[0].Status != models.PaymentPending || tops[0].IntentID != nil {
		t.Fatalf("after a failed create: %+v, want one pending top-up without its intent", tops)
	}
	time.Sleep(5 * time.Millisecond)
	a.App.BillingRound(context.Background())
	tops = p1.topups()
	if len(tops) != 1 || tops[0].IntentID == nil || *tops[0].IntentID != "pi_fake_1" {
		t.Fatalf("after the retry: %+v, want the same top-up with pi_fake_1", tops)
	}
	fake.mu.Lock()
	if len(fake.creates) != 2 || len(fake.intents) != 1 || fake.keys[0] != "topup-"+tops[0].ID || fake.keys[1] != fake.keys[0] {
		t.Fatalf("%d creates, %d intents, keys %v: want two creates with the top-up's key and one PaymentIntent", len(fake.creates), len(fake.intents), fake.keys)
	}
	for k, want := range map[string]string{"off_session": "true", "confirm": "true", "customer": "cus_fake1",
		"payment_method": "pm_fake1", "amount": "2000", "currency": "usd", "metadata[payment_id]": tops[0].ID} {
		if got := fake.creates[1].Get(k); got != want {
			t.Errorf("PaymentIntent %s = %q, want %q", k, got, want)
		}
	}
	fake.mu.Unlock()

	// The instance stops before the outcome; the other gets the events,
	// the success before a late failure, and again.
	a.App.Close()
	a.Close()
	pi := map[string]any{"id": "pi_fake_1", "object": "payment_intent", "amount": 2000, "currency": "usd", "status": "succeeded",
		"metadata": map[string]string{"payment_id": tops[0].ID}}
	failed := map[string]any{"id": "pi_fake_1", "object": "payment_intent", "amount": 2000, "currency": "usd",
		"status": "requires_payment_method", "metadata": map[string]string{"payment_id": tops[0].ID},
		"last_payment_error": map[string]any{"type": "card_error", "code": "card_declined", "decline_code": "generic_decline"}}
	p1.srv = b
	before := p1.balance()
	for _, ev := range []struct {
		id, typ string
		obj     map[string]any
		want    string
	}{
		{"evt_pi_2", "payment_intent.succeeded", pi, models.EventCredited},
		{"evt_pi_1", "payment_intent.payment_failed", failed, models.EventNoChange},
		{"evt_pi_2", "payment_intent.succeeded", pi, models.EventDuplicate},
		{"evt_pi_3", "payment_intent.succeeded", pi, models.EventAlreadyPaid},
	} {
		if body := stripeSigned(t, b, ev.id, ev.typ, ev.obj); !strings.Contains(body, `"outcome":"`+ev.want+`"`) {
			t.Fatalf("%s %s: %s, want %s", ev.typ, ev.id, body, ev.want)
		}
	}
	fake.set("pi_fake_1", "succeeded")
	b.App.BillingRound(context.Background()) // re-checks every pending top-up after the restart
	if got := p1.balance() - before; got != 20*models.MicrosPerUSD {
		t.Fatalf("credited %s, want $20.00 once", models.FormatUSD(got))
	}
	if rs := box.with("Receipt 000001"); len(rs) != 1 || !strings.Contains(rs[0].text, "Visa •••• 4242") {
		t.Fatalf("receipts mailed: %+v", rs)
	}

	// The next crossing's webhook is lost: the re-check credits it, and
	// the webhook arriving at last changes nothing.
	p1.credit(-20)
	b.App.BillingRound(context.Background())
	tops = p1.topups()
	if len(tops) != 2 || tops[0].Status != models.PaymentPending || tops[0].IntentID == nil || *tops[0].IntentID != "pi_fake_2" {
		t.Fatalf("second crossing: %+v, want a pending top-up with pi_fake_2", tops)
	}
	before = p1.balance()
	fake.set("pi_fake_2", "succeeded")
	time.Sleep(5 * time.Millisecond)
	b.App.TopupRecheck = time.Millisecond
	b.App.BillingRound(context.Background())
	pi["id"], pi["metadata"] = "pi_fake_2", map[string]string{"payment_id": tops[0].ID}
	if body := stripeSigned(t, b, "evt_pi_late", "payment_intent.succeeded", pi); !strings.Contains(body, models.EventAlreadyPaid) {
		t.Fatalf("the late webhook: %s, want %s", body, models.EventAlreadyPaid)
	}
	if got := p1.balance() - before; got != 20*models.MicrosPerUSD || p1.status(tops[0].ID) != models.PaymentPaid {
		t.Fatalf("re-checked top-up: credited %s, status %s; want $20.00 once, paid", models.FormatUSD(got), p1.status(tops[0].ID))
	}
	if rs := box.with("Receipt 000002"); len(rs) != 1 {
		t.Fatalf("receipt 000002 mailed %d times, want once", len(rs))
	}
}
