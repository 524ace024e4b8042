package payments_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/stripe/stripe-go/v82"

	"ttconsole/internal/payments"
	"ttconsole/internal/testenv"
	"ttconsole/models"
)

func pendingPayment(t *testing.T, s *models.Store, provider string) *models.Payment {
	t.Helper()
	ctx := context.Background()
	u, err := s.CreateAccount(ctx, "payer@example.com", "long enough password")
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.CreatePayment(ctx, u.AccountID, provider, 25*models.MicrosPerUSD, models.Actor{UserID: u.ID, Name: u.Email})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTestProviderCheckout: the test provider's checkout is a console page
// of a session kept in the database, open and unpaid for the payment's
// amount until someone acts on it.
func TestTestProviderCheckout(t *testing.T) {
	store := models.NewStore(testenv.DB(t))
	p := pendingPayment(t, store, payments.ProviderTest)
	var prov payments.Provider = &payments.TestProvider{Store: store}
	if prov.Name() != payments.ProviderTest || prov.CheckoutOrigin() != "" {
		t.Fatalf("name %q, origin %q: want test, on this site", prov.Name(), prov.CheckoutOrigin())
	}
	co, err := prov.CreateCheckout(context.Background(), p, payments.CheckoutURLs{})
	if err != nil {
		t.Fatal(err)
	}
	if co.URL != "/billing/test-checkout/"+co.SessionID {
		t.Fatalf("checkout at %q, want the console's test checkout page of %s", co.URL, co.SessionID)
	}
	st, err := prov.Session(context.Background(), co.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	want := payments.CheckoutState{SessionID: co.SessionID, Status: "open", PaymentStatus: "unpaid",
		AmountCents: 2500, Currency: "usd", ClientReferenceID: p.ID}
	if *st != want {
		t.Fatalf("session %+v, want %+v", *st, want)
	}
	if _, err := prov.Session(context.Background(), "cs_test_nope"); models.ErrorCode(err) != models.ENOTFOUND {
		t.Fatalf("an unknown session: %v, want not found", err)
	}
}

// TestStripeProviderCheckout opens a Checkout Session through stripe-go
// against a local stand-in for Stripe's API and reads it back.
func TestStripeProviderCheckout(t *testing.T) {
	var (
		mu   sync.Mutex
		sent url.Values
	)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/checkout/sessions":
			b, _ := io.ReadAll(r.Body)
			sent, _ = url.ParseQuery(string(b))
			json.NewEncoder(w).Encode(map[string]any{"id": "cs_test_1", "object": "checkout.session",
				"url": "https://checkout.stripe.com/c/pay/cs_test_1", "status": "open", "payment_status": "unpaid"})
		case r.Method == http.MethodGet && r.URL.Path == "/v1/checkout/sessions/cs_test_1":
			json.NewEncoder(w).Encode(map[string]any{"id": "cs_test_1", "object": "checkout.session", "status": "complete",
				"payment_status": "paid", "amount_total": 2500, "currency": "usd", "client_reference_id": sent.Get("client_reference_id")})
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"type":"invalid_request_error","message":"no such route"}}`)
		}
	}))
	t.Cleanup(api.Close)
	retries := int64(0)
	prov := payments.NewStripeProvider("sk_test_fake", stripe.WithBackends(stripe.NewBackendsWithConfig(&stripe.BackendConfig{
		URL: stripe.String(api.URL), MaxNetworkRetries: &retries,
	})))
	if prov.Name() != payments.ProviderStripe || prov.CheckoutOrigin() != "https://checkout.stripe.com" {
		t.Fatalf("name %q, origin %q", prov.Name(), prov.CheckoutOrigin())
	}
	store := models.NewStore(testenv.DB(t))
	p := pendingPayment(t, store, payments.ProviderStripe)
	co, err := prov.CreateCheckout(context.Background(), p, payments.CheckoutURLs{Success: "http://console/ok", Cancel: "http://console/back"})
	if err != nil {
		t.Fatal(err)
	}
	if co.SessionID != "cs_test_1" || co.URL != "https://checkout.stripe.com/c/pay/cs_test_1" {
		t.Fatalf("checkout %+v", co)
	}
	mu.Lock()
	for k, want := range map[string]string{
		"mode": "payment", "client_reference_id": p.ID, "success_url": "http://console/ok", "cancel_url": "http://console/back",
		"line_items[0][quantity]": "1", "line_items[0][price_data][unit_amount]": "2500", "line_items[0][price_data][currency]": "usd",
		"metadata[payment_id]": p.ID, "metadata[account_id]": p.AccountID,
	} {
		if got := sent.Get(k); got != want {
			t.Errorf("sent %s = %q, want %q", k, got, want)
		}
	}
	mu.Unlock()
	st, err := prov.Session(context.Background(), "cs_test_1")
	if err != nil {
		t.Fatal(err)
	}
	want := payments.CheckoutState{SessionID: "cs_test_1", Status: "complete", PaymentStatus: "paid",
		AmountCents: 2500, Currency: "usd", ClientReferenceID: p.ID}
	if *st != want {
		t.Fatalf("session %+v, want %+v", *st, want)
	}
}
