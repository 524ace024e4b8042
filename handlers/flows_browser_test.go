package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// apiCall makes one chat call with a key's secret and returns its status,
// error type and request id.
func apiCall(t *testing.T, srv *testenv.Server, secret string, maxTokens int) (int, string, string) {
	t.Helper()
	body := `{"model":"tt-chat-small","max_tokens":` + strconv.Itoa(maxTokens) + `,"messages":[{"role":"user","content":"Hello"}]}`
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var e struct{ Error struct{ Type string } }
	json.Unmarshal([]byte(testenv.Body(t, res)), &e)
	return res.StatusCode, e.Error.Type, res.Header.Get("X-TT-Request-ID")
}

// signIn signs a browser in and waits for the page asked for, signed in
// (the login page has a heading too).
func signIn(t *testing.T, ctx context.Context, srv *testenv.Server, email, path string) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+path),
		chromedp.WaitVisible(chromedp.CSS(`#f-email`)),
		chromedp.SendKeys(chromedp.CSS(`#f-email`), email),
		chromedp.SendKeys(chromedp.CSS(`#f-password`), testenv.Password),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=account-email]`)),
		chromedp.WaitVisible(chromedp.CSS(`main h1`)),
	)
	if err != nil {
		t.Fatalf("sign in to %s: %v", path, err)
	}
}

// TestBrowserShortfallToRetriedCall drives real Chromium from a call
// refused with billing_shortfall to the same call passing: the failed
// call's fix names the real minimum recharge and the shortfall, one click
// opens the test checkout, paying comes back to the failed call's page,
// which then says the wallet covers the call, and the retried call passes.
func TestBrowserShortfallToRetriedCall(t *testing.T) {
	srv := testenv.NewServer(t)
	ctx := testenv.Browser(t)
	// Two cents: short of a long tt-chat-small answer's hold ($0.02459).
	acct := testenv.FundedKey(t, srv.Store, "ada@example.com", 20_000, models.KeyInput{Name: "ci", RPM: "600"})
	status, typ, failed := apiCall(t, srv, acct.Secret, 16384)
	if status != http.StatusPaymentRequired || typ != "billing_shortfall" {
		t.Fatalf("call: %d %s, want 402 billing_shortfall", status, typ)
	}

	// On a phone, where the long button must still fit.
	l := &layoutCalls{srv: srv, ctx: ctx}
	l.viewport(t, 390, 844, true)
	signIn(t, ctx, srv, acct.Email, "/requests/"+failed)
	l.screenshot(t, "phone-shortfall-fix")
	l.noSidewaysScroll(t, "the failed call's page")
	if b := l.boxOf(t, `[data-testid=fix-button]`); !b.inView() {
		t.Errorf("the fix button is %s", b)
	}
	button, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=fix] [data-testid=fix-button]`)))
	if err != nil {
		t.Fatal(err)
	}
	// The hold is $0.024588 (DESIGN §8's prices), $0.004588 more than the
	// wallet holds: a cent, as a checkout counts, with the $5 minimum.
	if want := "Recharge $5.00 — the minimum — to cover the $0.01 shortfall"; button != want {
		t.Errorf("the fix button says %q, want %q", button, want)
	}

	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid=fix-button]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=test-checkout]`)),
	)
	if err != nil {
		t.Fatalf("open the checkout from the fix: %v", err)
	}
	heading, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=test-checkout] h1`)))
	if !strings.Contains(heading, "$5.00") {
		t.Errorf("the checkout is for %q, want $5.00", heading)
	}

	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid=test-pay]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=fix-done]`)),
	)
	if err != nil {
		t.Fatalf("pay: %v", err)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if u, _ := url.Parse(loc); u == nil || u.Path != "/requests/"+failed {
		t.Errorf("after paying the browser is at %s, want the failed call's page", loc)
	}
	done, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=fix-done]`)))
	if !strings.Contains(done, "covers this call's hold") || !strings.Contains(done, "$5.02") {
		t.Errorf("the failed call's page says %q, want that the $5.02 available covers it now", done)
	}
	flash, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main .flash[role=status]`)))
	if !strings.Contains(flash, "Payment received: $5.00") {
		t.Errorf("the page returned to says %q, want the payment received", flash)
	}

	if status, typ, _ := apiCall(t, srv, acct.Secret, 16384); status != http.StatusOK {
		t.Fatalf("the retried call: %d %s, want 200", status, typ)
	}
}

// TestBrowserEmptyAndLowWallet checks what an account short of money sees:
// at $0 an "Add funds" call to action on Overview and a red header balance
// that says "empty"; below its low-balance warning an amber one that says
// "low"; with money, neither.
func TestBrowserEmptyAndLowWallet(t *testing.T) {
	srv := testenv.NewServer(t)
	ctx := testenv.Browser(t)
	acct := testenv.FundedKey(t, srv.Store, "ada@example.com", 0, models.KeyInput{Name: "ci", RPM: "600"})
	l := &layoutCalls{srv: srv, ctx: ctx}
	type header struct {
		Text, Label, State, Color string
		CTA                       bool
	}
	look := func() header {
		t.Helper()
		h, err := chromedp.Run(ctx, chromedp.Evaluate[header](`(() => {
			const b = document.querySelector(".topbar .balance");
			return {text: b.textContent.trim().replace(/\s+/g, " "), label: b.getAttribute("aria-label") || "",
				state: b.dataset.balanceState || "", color: getComputedStyle(b).color,
				cta: !!document.querySelector("[data-testid=add-funds] a[href='/billing#recharge']")};
		})()`))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}

	signIn(t, ctx, srv, acct.Email, "/")
	l.screenshot(t, "overview-empty-wallet")
	h := look()
	if !h.CTA {
		t.Error("a $0 account's Overview has no Add funds call to action")
	}
	if h.Text != "$0.00 empty" || !strings.Contains(h.Label, "empty") || h.Color != "rgb(180, 35, 24)" {
		t.Errorf("a $0 header balance: %+v, want red and saying empty", h)
	}
	err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid=add-funds-button]`)),
		chromedp.WaitVisible(chromedp.CSS(`#recharge [data-testid=preset-25]`)),
	)
	if err != nil {
		t.Fatalf("Add funds does not lead to the recharge form: %v", err)
	}

	// $5 with a $10 warning: low, amber, and calls still go through.
	if _, err := srv.Store.Credit(t.Context(), acct.ID, 5*models.MicrosPerUSD, models.LedgerAdjustment, "funds", models.LedgerRef{}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Store.SetLowBalanceThreshold(t.Context(), acct.ID, "10", models.AdminCLI); err != nil {
		t.Fatal(err)
	}
	l.open(t, "/")
	h = look()
	if h.CTA {
		t.Error("an account with $5 is asked to add funds")
	}
	if h.Text != "$5.00 low" || !strings.Contains(h.Label, "low") || h.Color != "rgb(147, 55, 13)" {
		t.Errorf("a header balance below the warning: %+v, want amber and saying low", h)
	}

	// Above the warning: the plain balance.
	if _, err := srv.Store.SetLowBalanceThreshold(t.Context(), acct.ID, "1", models.AdminCLI); err != nil {
		t.Fatal(err)
	}
	l.open(t, "/")
	if h = look(); h.Text != "$5.00" || h.State != "" || h.Color != "rgb(6, 118, 71)" {
		t.Errorf("a header balance above the warning: %+v, want the plain green amount", h)
	}
}

// TestBrowserRateLimitFixFocusesRPM checks that the fix of a rate-limited
// call leads to its key's rate limit field with the cursor in it.
func TestBrowserRateLimitFixFocusesRPM(t *testing.T) {
	srv := testenv.NewServer(t)
	ctx := testenv.Browser(t)
	acct := testenv.FundedKey(t, srv.Store, "ada@example.com", models.MicrosPerUSD, models.KeyInput{Name: "slow", RPM: "1"})
	apiCall(t, srv, acct.Secret, 10)
	status, typ, limited := apiCall(t, srv, acct.Secret, 10)
	if status != http.StatusTooManyRequests || typ != "rate_limited" {
		t.Fatalf("second call in a minute at 1 rpm: %d %s", status, typ)
	}
	signIn(t, ctx, srv, acct.Email, "/requests/"+limited)
	err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid=fix-link]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=key-form]`)),
	)
	if err != nil {
		t.Fatalf("follow the fix: %v", err)
	}
	type focus struct {
		Path, ID, Value string
		InView          bool
	}
	f, err := chromedp.Run(ctx, chromedp.Evaluate[focus](`(() => {
		const e = document.activeElement, r = e.getBoundingClientRect();
		return {path: location.pathname, id: e.id, value: e.value || "", inView: r.top >= 0 && r.bottom <= window.innerHeight};
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if f.Path != "/keys/"+acct.Key.ID || f.ID != "f-rpm" || f.Value != "1" || !f.InView {
		t.Errorf("after the fix link: %+v, want the key's rpm field focused and in view", f)
	}
}

// TestBrowserRequestFilters checks the filters as Chromium draws them: a
// preset fills the date and time picker, which Chromium accepts as a
// value, the count says how many match, the model is chosen from the
// catalogue, and Clear filters shows everything again.
func TestBrowserRequestFilters(t *testing.T) {
	srv := testenv.NewServer(t)
	ctx := testenv.Browser(t)
	acct := testenv.FundedKey(t, srv.Store, "ada@example.com", 0, models.KeyInput{Name: "ci", RPM: "600"})
	now := time.Now().UTC()
	for i, at := range []time.Time{now.Add(-3 * time.Hour), now.Add(-2 * time.Hour), now.Add(-5 * time.Minute)} {
		r := models.Request{ID: models.NewRequestIDAt(at), AccountID: &acct.ID, Method: "POST", Path: "/v1/chat/completions",
			Status: []int{200, 502, 502}[i], Model: "tt-chat-small", CreatedAt: at}
		if err := srv.Store.LogRequest(t.Context(), &r); err != nil {
			t.Fatal(err)
		}
	}
	signIn(t, ctx, srv, acct.Email, "/requests?status=5xx")
	type state struct {
		From, Count string
		Models      []string
		Rows        int
	}
	look := func() state {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid=match-count]:not(:empty)`))); err != nil {
			t.Fatalf("no count: %v", err)
		}
		s, err := chromedp.Run(ctx, chromedp.Evaluate[state](`({
			from: document.querySelector("#f-from").value,
			count: document.querySelector("[data-testid=match-count]").textContent.trim(),
			models: Array.from(document.querySelectorAll("select#f-model option")).map(o => o.value),
			rows: document.querySelectorAll("tr[data-request-id]").length})`))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := look(); s.Count != "2 matching requests" || s.Rows != 2 || !slices.Contains(s.Models, "tt-video-1") {
		t.Errorf("5xx filter: %+v, want 2 matching and the catalogue's models", s)
	}
	err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid=range-presets] a:first-of-type`)),
		chromedp.WaitVisible(chromedp.CSS(`#f-from:not([value=""])`)),
	)
	if err != nil {
		t.Fatalf("the preset's page: %v", err)
	}
	s := look()
	if s.Count != "1 matching request" || s.Rows != 1 || !strings.HasPrefix(s.From, now.Add(-time.Hour).Format("2006-01-02T")) {
		t.Errorf("the last hour's 5xx: %+v, want 1 and the picker showing an hour ago", s)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid=clear-filters]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`[data-testid=clear-filters]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	if s := look(); s.Count != "3 requests" || s.Rows != 3 || s.From != "" {
		t.Errorf("after Clear filters: %+v, want all 3 and no range", s)
	}
}

// TestBrowserNotFoundKeepsTheSignedInHeader checks that a signed-in
// person on an unknown path sees the 404 page inside the console they are
// signed in to: menu, balance and email, and a Log out that works.
func TestBrowserNotFoundKeepsTheSignedInHeader(t *testing.T) {
	srv := testenv.NewServer(t)
	ctx := testenv.Browser(t)
	acct := testenv.FundedKey(t, srv.Store, "ada@example.com", models.MicrosPerUSD, models.KeyInput{Name: "ci", RPM: "600"})
	signIn(t, ctx, srv, acct.Email, "/")

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/no/such/page"), chromedp.WaitReady(chromedp.CSS(`main`))); err != nil {
		t.Fatal(err)
	}
	type header struct {
		Status                     int
		Title, Nav, Email, Balance string
	}
	h, err := chromedp.Run(ctx, chromedp.Evaluate[header](`({
		status: performance.getEntriesByType("navigation")[0].responseStatus,
		title: (document.querySelector("main h1") || {}).textContent || "",
		nav: (document.querySelector("nav.mainnav") || {}).textContent || "",
		email: (document.querySelector("[data-testid=account-email]") || {}).textContent || "",
		balance: (document.querySelector(".topbar .balance") || {}).textContent || ""})`))
	if err != nil {
		t.Fatal(err)
	}
	if h.Status != http.StatusNotFound || h.Title != "Page not found" || !strings.Contains(h.Nav, "API keys") || h.Email != acct.Email || h.Balance != "$1.00" {
		t.Fatalf("the 404 page of a signed-in person: %+v, want the signed-in header", h)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/login"]`)),
	)
	if err != nil {
		t.Fatalf("log out from the 404 page: %v", err)
	}
}
