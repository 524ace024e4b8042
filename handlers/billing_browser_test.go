package handlers_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// TestBrowserRechargeWithTestProvider drives real Chromium through a
// recharge: a call refused with billing_shortfall, $25 through the test
// provider's TEST MODE checkout, the balance up by exactly $25, the payment
// paid, and the same call now succeeding.
func TestBrowserRechargeWithTestProvider(t *testing.T) {
	srv := testenv.NewServer(t)
	ctx := testenv.Browser(t)
	acct := testenv.FundedKey(t, srv.Store, "ada@example.com", 0, models.KeyInput{Name: "ci", RPM: "600"})
	call := func() (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions",
			strings.NewReader(`{"model":"tt-chat-small","messages":[{"role":"user","content":"Hello"}]}`))
		req.Header.Set("Authorization", "Bearer "+acct.Secret)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, testenv.Body(t, res)
	}
	if status, body := call(); status != http.StatusPaymentRequired || !strings.Contains(body, `"billing_shortfall"`) {
		t.Fatalf("call with an empty wallet: %d %s, want 402 billing_shortfall", status, body)
	}

	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/billing"),
		chromedp.WaitVisible(chromedp.CSS(`#f-email`)),
		chromedp.SendKeys(chromedp.CSS(`#f-email`), "ada@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#f-password`), testenv.Password),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=billing-balance]`)),
	)
	if err != nil {
		t.Fatalf("log in to the billing page: %v", err)
	}
	before, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=billing-balance]`)))
	if err != nil || before != "$0.00" {
		t.Fatalf("balance before: %q %v", before, err)
	}

	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid=preset-25]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=test-checkout]`)),
	)
	if err != nil {
		t.Fatalf("open the test checkout: %v", err)
	}
	label, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.testmode-label`)))
	heading, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=test-checkout] h1`)))
	if label != "TEST MODE" || !strings.Contains(heading, "$25.00") {
		t.Fatalf("checkout page shows %q / %q, want TEST MODE and $25.00", label, heading)
	}

	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid=test-pay]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=returned]`)),
	)
	if err != nil {
		t.Fatalf("pay: %v", err)
	}
	after, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=billing-balance]`)))
	if after != "$25.00" {
		t.Errorf("balance after paying $25: %q, want $25.00", after)
	}
	status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`table[data-testid=payments] [data-testid=payment-status]`)))
	if status != "Paid" {
		t.Errorf("payment status %q, want Paid", status)
	}
	header, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.topbar .balance`)))
	if header != "$25.00" {
		t.Errorf("header balance %q, want $25.00", header)
	}
	w, err := srv.Store.WalletOf(t.Context(), acct.ID)
	if err != nil || w.BalanceMicros != 25*models.MicrosPerUSD {
		t.Fatalf("wallet after recharge: %+v %v", w, err)
	}

	if status, body := call(); status != http.StatusOK {
		t.Fatalf("the same call after the recharge: %d %s, want 200", status, body)
	}
	if err := srv.Store.LedgerInvariant(t.Context(), acct.ID); err != nil {
		t.Fatalf("ledger invariant: %v", err)
	}
}
