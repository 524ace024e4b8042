package handlers_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"ttconsole/handlers"
	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// TestBrowserAutoTopup drives real Chromium: save the test card that
// succeeds, turn auto top-up on, spend below the threshold with API calls,
// and see the top-up paid on Billing and its receipt.
func TestBrowserAutoTopup(t *testing.T) {
	box := &mailbox{}
	opts := topupOptions(box)
	adjust := opts.Adjust
	opts.Adjust = func(a *handlers.App) {
		adjust(a)
		a.BillingPoll = 100 * time.Millisecond // the worker runs on its own
	}
	srv := testenv.NewServer(t, opts)
	ctx := testenv.Browser(t)
	acct := testenv.FundedKey(t, srv.Store, "ada@example.com", 5_010_000, models.KeyInput{Name: "ci", RPM: "600"})

	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/billing"),
		chromedp.WaitVisible(chromedp.CSS(`#f-email`)),
		chromedp.SendKeys(chromedp.CSS(`#f-email`), "ada@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#f-password`), testenv.Password),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=save-card]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=save-card]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=test-setup]`)),
	)
	if err != nil {
		t.Fatalf("open the card form: %v", err)
	}
	if got := text(`.testmode-label`); got != "TEST MODE" {
		t.Fatalf("the card form says %q, want TEST MODE", got)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid=test-card-4242]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=test-save-card]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=saved-card]`)),
	)
	if err != nil {
		t.Fatalf("save the card: %v", err)
	}
	if got := text(`[data-testid=saved-card]`); !strings.Contains(got, "Visa •••• 4242") {
		t.Fatalf("saved card %q", got)
	}

	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid=topup-enabled]`)),
		chromedp.SendKeys(chromedp.CSS(`#topup-threshold`), "5"),
		chromedp.SendKeys(chromedp.CSS(`#topup-amount`), "20"),
		chromedp.SendKeys(chromedp.CSS(`#topup-cap`), "100"),
		chromedp.Click(chromedp.CSS(`[data-testid=save-topup]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=topup-sentence]`)),
	)
	if err != nil {
		t.Fatalf("turn auto top-up on: %v", err)
	}
	if got, want := text(`[data-testid=topup-sentence]`), "When available balance drops below $5.00, add $20.00 (at most $100.00 a month)."; got != want {
		t.Fatalf("Billing says %q, want %q", got, want)
	}

	// Each call holds about $0.025: $5.01 goes below $5.00.
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(chatBody("tt-chat-small", 16384, nil)))
		req.Header.Set("Authorization", "Bearer "+acct.Secret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if testenv.Body(t, res); res.StatusCode != http.StatusOK {
			t.Fatalf("call: %d", res.StatusCode)
		}
	}

	row := `table[data-testid=payments] tr[data-kind="Auto top-up"]`
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := chromedp.Do(ctx,
			chromedp.Navigate(srv.URL+"/billing"),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=billing-balance]`)),
		)
		if err != nil {
			t.Fatalf("reload Billing: %v", err)
		}
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('`+row+` [data-status="paid"]').length`))
		if err != nil {
			t.Fatalf("read Billing: %v", err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no paid auto top-up on Billing after 15 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := text(row); !strings.Contains(got, "$20.00") || !strings.Contains(got, "Visa •••• 4242") {
		t.Fatalf("the auto top-up row reads %q", got)
	}
	// A fresh page: the one that first showed the payment may have read
	// the wallet just before the credit committed.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/billing"), chromedp.WaitVisible(chromedp.CSS(row))); err != nil {
		t.Fatal(err)
	}
	if got := text(`[data-testid=billing-balance]`); !strings.HasPrefix(got, "$25.0") {
		t.Fatalf("balance %q after the top-up, want about $25.01", got)
	}

	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(row+` [data-testid=receipt-link]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=receipt]`)),
	)
	if err != nil {
		t.Fatalf("open the receipt: %v", err)
	}
	for sel, want := range map[string]string{
		`[data-testid=receipt-number]`: "000001",
		`[data-testid=receipt-amount]`: "$20.00 (USD)",
		`[data-testid=receipt-method]`: "Visa •••• 4242",
		`[data-testid=receipt-email]`:  "ada@example.com",
	} {
		if got := text(sel); got != want {
			t.Errorf("receipt %s: %q, want %q", sel, got, want)
		}
	}
}
