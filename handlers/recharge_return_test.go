package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"ttconsole/models"
)

// TestRechargeReturnsToItsPage checks the return path of a recharge
// started from a failed call's page: the test checkout carries it, a paid
// checkout lands back on that page with the payment said, and only a path
// on this site is ever followed.
func TestRechargeReturnsToItsPage(t *testing.T) {
	srv := newBillingServer(t)
	p := newPayer(t, srv, "ada@example.com")
	back := "/requests/" + models.RequestIDAt(time.Now())

	res, _ := p.post("/billing", "/billing/recharge", url.Values{"amount_usd": {"5"}, "return_to": {back}})
	loc := res.Header.Get("Location")
	sid, query, _ := strings.Cut(strings.TrimPrefix(loc, "/billing/test-checkout/"), "?")
	if res.StatusCode != http.StatusSeeOther || query != "return_to="+url.QueryEscape(back) {
		t.Fatalf("recharge for %s: %d to %q, want the test checkout carrying the return path", back, res.StatusCode, loc)
	}
	if _, page := p.get(loc); !strings.Contains(page, `name="return_to" value="`+back+`"`) {
		t.Fatal("the test checkout's buttons do not carry the return path")
	}
	res, _ = p.post(loc, "/billing/test-checkout/"+sid, url.Values{"action": {"pay"}, "return_to": {back}})
	loc = res.Header.Get("Location")
	if !strings.HasPrefix(loc, "/billing?payment=") || !strings.HasSuffix(loc, "&checkout=success&return_to="+url.QueryEscape(back)) {
		t.Fatalf("paid: sent to %q, want Billing with the return path", loc)
	}
	res, _ = p.get(loc)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != back {
		t.Fatalf("Billing after a paid checkout: %d to %q, want %s", res.StatusCode, res.Header.Get("Location"), back)
	}
	if _, page := p.get("/"); !strings.Contains(page, "Payment received: $5.00 has been added to your balance.") {
		t.Error("the page returned to does not say the payment was received")
	}

	// A cancelled checkout stays on Billing and links back.
	res, _ = p.post("/billing", "/billing/recharge", url.Values{"amount_usd": {"5"}, "return_to": {back}})
	loc = res.Header.Get("Location")
	sid, _, _ = strings.Cut(strings.TrimPrefix(loc, "/billing/test-checkout/"), "?")
	res, _ = p.post(loc, "/billing/test-checkout/"+sid, url.Values{"action": {"cancel"}, "return_to": {back}})
	res, page := p.get(res.Header.Get("Location"))
	if res.StatusCode != http.StatusOK || !strings.Contains(page, `data-testid="return-link"><a href="`+back+`"`) {
		t.Errorf("Billing after a cancelled checkout: %d, want the page with a link back to %s", res.StatusCode, back)
	}

	// Other sites, and anything a browser could read as one, are dropped.
	for _, bad := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)",
		"/%2F%2Fevil.example", "/\tevil", "evil.example"} {
		res, _ := p.post("/billing", "/billing/recharge", url.Values{"amount_usd": {"5"}, "return_to": {bad}})
		loc := res.Header.Get("Location")
		if strings.Contains(loc, "return_to") {
			t.Errorf("recharge with return_to %q: sent to %q", bad, loc)
		}
		sid := strings.TrimPrefix(loc, "/billing/test-checkout/")
		res, _ = p.post(loc, "/billing/test-checkout/"+sid, url.Values{"action": {"pay"}, "return_to": {bad}})
		loc = res.Header.Get("Location")
		if strings.Contains(loc, "return_to") {
			t.Errorf("paid with return_to %q: sent to %q", bad, loc)
		}
		res, _ = p.get(loc + "&return_to=" + url.QueryEscape(bad))
		if res.StatusCode != http.StatusOK {
			t.Errorf("Billing with return_to %q: %d to %q, want the page itself", bad, res.StatusCode, res.Header.Get("Location"))
		}
	}
}
