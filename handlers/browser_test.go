package handlers_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"ttconsole/internal/testenv"
)

// TestBrowserSignupLogoutLogin drives real Chromium through the console's
// first minutes: sign up, log out, log in, see the navigation.
func TestBrowserSignupLogoutLogin(t *testing.T) {
	srv := testenv.NewServer(t)
	ctx := testenv.Browser(t)

	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/signup"),
		chromedp.WaitVisible(chromedp.CSS(`#f-email`)),
		chromedp.SendKeys(chromedp.CSS(`#f-email`), "ada@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#f-password`), "short"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`.field-error[data-field=password]`)),
	)
	if err != nil {
		t.Fatalf("sign up with a short password: %v", err)
	}
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.field-error[data-field=password]`)))
	if err != nil || !strings.Contains(msg, "at least 10 characters") {
		t.Fatalf("message beside the password: %q %v", msg, err)
	}

	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#f-password`), "correct horse battery"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`nav.mainnav a[href="/keys"]`)),
	)
	if err != nil {
		t.Fatalf("sign up: %v", err)
	}
	nav, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`nav.mainnav`)))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Overview", "Requests", "API keys", "Billing"} {
		if !strings.Contains(nav, want) {
			t.Errorf("navigation %q lacks %q", nav, want)
		}
	}
	email, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=account-email]`)))
	if email != "ada@example.com" {
		t.Errorf("header shows %q, want the account's email", email)
	}

	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/login"]`)),
		chromedp.Navigate(srv.URL+"/keys"),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/login"]`)),
	)
	if err != nil {
		t.Fatalf("log out: %v", err)
	}

	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#f-email`), "ada@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#f-password`), "correct horse battery"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`nav.mainnav a.active[href="/keys"]`)),
	)
	if err != nil {
		t.Fatalf("log in and land on the page asked for: %v", err)
	}
}
