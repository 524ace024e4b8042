package handlers_test

import (
	"net/http"
	"strings"
	"testing"

	"ttconsole/handlers"
	"ttconsole/internal/payments"
	"ttconsole/internal/testenv"
)

// TestTestModeStripOnEveryConsolePage: with the test payment provider,
// where recharges are free, every console page (signed in or not, error
// pages too) says so in a strip at the top; with Stripe, none does.
func TestTestModeStripOnEveryConsolePage(t *testing.T) {
	pages := []string{"/login", "/signup", "/", "/requests", "/keys", "/billing", "/account", "/requests/req_nope", "/nope"}
	for _, mode := range []struct {
		name     string
		payments payments.Provider
	}{
		{"test provider", nil},
		{"Stripe", payments.NewStripeProvider("sk_test_never_called")},
	} {
		t.Run(mode.name, func(t *testing.T) {
			srv := testenv.NewServer(t, testenv.Options{Payments: mode.payments,
				Config: handlers.Config{StripeWebhookSecrets: []string{testWebhookSecret}}})
			signedOut := newBrowser(t, srv)
			p := newPayer(t, srv, "ada@example.com")
			for _, path := range pages {
				b := p.browser
				if path == "/login" || path == "/signup" {
					b = signedOut
				}
				res, page := b.get(path)
				if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
					t.Fatalf("%s: %d %s", path, res.StatusCode, res.Header.Get("Content-Type"))
				}
				strip := testenv.Doc(t, page).Find(`[data-testid=test-mode-strip]`)
				if mode.payments != nil {
					if strip.Length() != 0 || strings.Contains(page, "TEST MODE") {
						t.Errorf("%s: TEST MODE shown with Stripe configured", path)
					}
					continue
				}
				if strip.Length() != 1 || !strings.Contains(strip.Text(), "TEST MODE") ||
					!strings.Contains(strip.Text(), "recharges are free and no card is charged") {
					t.Errorf("%s (%d): no TEST MODE strip saying recharges are free: %q", path, res.StatusCode, strip.Text())
				}
				if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusNotFound {
					t.Errorf("%s: %d", path, res.StatusCode)
				}
			}
		})
	}
}
