package handlers_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// TestBrowserKeptBodiesOnAPhone opens a call's kept bodies on a 390 px
// phone: both are there, pretty-printed; a long line scrolls inside its
// box, not the page; and the copy button copies.
func TestBrowserKeptBodiesOnAPhone(t *testing.T) {
	srv := testenv.NewServer(t)
	acct := testenv.FundedKey(t, srv.Store, "ada@example.com", 5*models.MicrosPerUSD,
		models.KeyInput{Name: "capture", RPM: "600", KeepBodies: "on"})
	p := &platform{t: t, srv: srv, account: acct.ID, secret: acct.Secret, key: acct.Key}
	long := strings.Repeat("x", 3000) // one unbroken line
	r := p.do("POST", "/v1/chat/completions", acct.Secret,
		`{"model":"tt-chat-small","max_tokens":8,"messages":[{"role":"user","content":"`+long+`"}]}`)
	keptBodies(t, srv, acct.ID, r.id())

	ctx := testenv.Browser(t)
	l := &layoutCalls{srv: srv, ctx: ctx}
	l.viewport(t, 390, 844, true)
	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/requests/"+r.id()),
		chromedp.WaitVisible(chromedp.CSS(`#f-email`)),
		chromedp.SendKeys(chromedp.CSS(`#f-email`), acct.Email),
		chromedp.SendKeys(chromedp.CSS(`#f-password`), testenv.Password),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=bodies]`)),
	)
	if err != nil {
		t.Fatalf("sign in to the request's page: %v", err)
	}
	l.noSidewaysScroll(t, "a request with kept bodies at 390 px")
	for _, sel := range []string{`[data-testid=request-body]`, `[data-testid=response-body]`, `[data-testid=copy-request]`} {
		if err := chromedp.Do(ctx, chromedp.ScrollIntoView(chromedp.CSS(sel))); err != nil {
			t.Fatal(err)
		}
		if b := l.boxOf(t, sel); !b.inView() {
			t.Errorf("%s on a phone is %s", sel, b)
		}
	}
	req, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=request-body]`)))
	if err != nil || !strings.Contains(req, "\n  \"model\": \"tt-chat-small\"") {
		t.Fatalf("request body shows %q (%v)", req, err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid=copy-request]`))); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		label, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=copy-request]`)))
		if err == nil && label == "Copied" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the copy button says %q (%v) after a click", label, err)
		}
	}
}
