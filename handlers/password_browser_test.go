package handlers_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"ttconsole/internal/smtptest"
	"ttconsole/internal/testenv"
)

// TestBrowserForgotPassword drives real Chromium through a forgotten
// password: a new account's banner fits a phone; on the login page
// "Forgot your password?" asks for the address; the link from the mail
// the SMTP server received sets a new password, refusing a short one
// beside the field; the new password signs in, the link never again.
func TestBrowserForgotPassword(t *testing.T) {
	smtp := smtptest.Start(t, smtptest.Options{})
	srv := mailServer(t, smtp)
	ctx := testenv.Browser(t)
	l := &layoutCalls{srv: srv, ctx: ctx}
	l.viewport(t, 390, 844, true)

	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/signup"),
		chromedp.WaitVisible(chromedp.CSS(`#f-email`)),
		chromedp.SendKeys(chromedp.CSS(`#f-email`), "ada@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#f-password`), "correct horse battery"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=verify-banner]`)),
	)
	if err != nil {
		t.Fatalf("sign up: %v", err)
	}
	l.screenshot(t, "phone-verify-banner")
	l.noSidewaysScroll(t, "the console with the confirm-your-address banner")
	if b := l.boxOf(t, `[data-testid=verify-resend]`); !b.inView() {
		t.Errorf("the banner's Send again button is %s", b)
	}

	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=forgot-link]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=forgot-link]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/password/forgot"] #f-email`)),
		chromedp.SendKeys(chromedp.CSS(`#f-email`), "ada@example.com"),
		chromedp.Click(chromedp.CSS(`form[action="/password/forgot"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=forgot-sent]`)),
	)
	if err != nil {
		t.Fatalf("ask for a reset link from the login page: %v", err)
	}
	sent, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=forgot-sent]`)))
	if !strings.Contains(sent, "ada@example.com") || !strings.Contains(sent, "30 minutes") {
		t.Errorf("the page after asking says %q", sent)
	}

	var link string
	eventually(t, 10*time.Second, "the reset mail", func() bool {
		if m := mailAbout(smtp.Messages(), "Reset your TT Console password"); len(m) == 1 {
			link = linkIn(t, m[0].Text, "/password/reset/")
			return true
		}
		return false
	})
	err = chromedp.Do(ctx,
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=reset] #f-password`)),
		chromedp.SendKeys(chromedp.CSS(`#f-password`), "too short"),
		chromedp.Click(chromedp.CSS(`[data-testid=reset] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`.field-error[data-field=password]`)),
	)
	if err != nil {
		t.Fatalf("open the mailed link and try a short password: %v", err)
	}
	msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.field-error[data-field=password]`)))
	if msg != "Use at least 10 characters." {
		t.Errorf("beside the password: %q", msg)
	}
	l.noSidewaysScroll(t, "the new password page")

	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#f-password`), "a brand new passphrase"),
		chromedp.Click(chromedp.CSS(`[data-testid=reset] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/login"]`)),
	)
	if err != nil {
		t.Fatalf("set the new password: %v", err)
	}
	flash, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main .flash`)))
	if !strings.Contains(flash, "Your password is set") {
		t.Errorf("the login page says %q", flash)
	}

	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#f-email`), "ada@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#f-password`), "a brand new passphrase"),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=account-email]`)),
	)
	if err != nil {
		t.Fatalf("log in with the new password: %v", err)
	}
	// Following the link reached the address: no banner any more.
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid=verify-banner]').length`)); n != 0 {
		t.Error("the banner asks to confirm an address the reset link reached")
	}

	err = chromedp.Do(ctx,
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=link-invalid] a[href="/password/forgot"]`)),
	)
	if err != nil {
		t.Fatalf("the used link does not say it is no longer valid: %v", err)
	}
}
