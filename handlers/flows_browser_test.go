package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

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

// signIn signs a browser in and waits for the page asked for.
func signIn(t *testing.T, ctx context.Context, srv *testenv.Server, email, path string) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+path),
		chromedp.WaitVisible(chromedp.CSS(`#f-email`)),
		chromedp.SendKeys(chromedp.CSS(`#f-email`), email),
		chromedp.SendKeys(chromedp.CSS(`#f-password`), testenv.Password),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
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
	// The hold is $0.024588 (DESIGN §8's prices), $0.004588 more than the wallet holds.
	if want := regexp.MustCompile(`^Recharge \$5(\.00)? — the minimum — to cover the \$0\.00(4588|5) shortfall$`); !want.MatchString(button) {
		t.Errorf("the fix button says %q, want the $5 minimum and the $0.004588 shortfall", button)
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
	if _, err := srv.Store.SetLowBalanceThreshold(t.Context(), acct.ID, "10"); err != nil {
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
	if _, err := srv.Store.SetLowBalanceThreshold(t.Context(), acct.ID, "1"); err != nil {
		t.Fatal(err)
	}
	l.open(t, "/")
	if h = look(); h.Text != "$5.00" || h.State != "" || h.Color != "rgb(6, 118, 71)" {
		t.Errorf("a header balance above the warning: %+v, want the plain green amount", h)
	}
}
