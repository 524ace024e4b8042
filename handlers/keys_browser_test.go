package handlers_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"ttconsole/internal/testenv"
)

// TestBrowserKeySecretShownOnce drives real Chromium: create a key, see
// its secret once, reload and see it gone, then type an invalid CIDR and
// see the message beside the field.
func TestBrowserKeySecretShownOnce(t *testing.T) {
	srv := testenv.NewServer(t)
	if _, err := srv.Store.CreateAccount(t.Context(), "ada@example.com", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	ctx := testenv.Browser(t)

	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/login?next=/keys"),
		chromedp.WaitVisible(chromedp.CSS(`#f-email`)),
		chromedp.SendKeys(chromedp.CSS(`#f-email`), "ada@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#f-password`), "correct horse battery"),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/keys"]`)),
		chromedp.SendKeys(chromedp.CSS(`#f-name`), "production"),
		chromedp.SendKeys(chromedp.CSS(`#f-allowed_ips`), "203.0.113.7"),
		chromedp.Click(chromedp.CSS(`form[action="/keys"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=new-secret]`)),
	)
	if err != nil {
		t.Fatalf("create a key: %v", err)
	}
	secret, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=new-secret]`)))
	if err != nil || !strings.HasPrefix(secret, "sk-tt-") || len(secret) != 49 {
		t.Fatalf("secret shown: %q %v", secret, err)
	}
	warning, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.secret`)))
	if !strings.Contains(warning, "It will not be shown again") {
		t.Errorf("no warning beside the secret: %q", warning)
	}

	// Reloading shows the key's own page, without the secret and without
	// creating a second key.
	err = chromedp.Do(ctx,
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=key-display]`)),
	)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS(`html`)))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, secret) || strings.Contains(html, secret[10:]) {
		t.Fatal("the secret is still on the page after a reload")
	}
	display, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=key-display]`)))
	if display != secret[:10]+"…"+secret[len(secret)-4:] {
		t.Errorf("key shows as %q", display)
	}
	u, err := srv.Store.UserByEmail(t.Context(), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := srv.Store.APIKeysOf(t.Context(), u.AccountID)
	if err != nil || len(keys) != 1 {
		t.Fatalf("%d keys after a reload (%v), want 1", len(keys), err)
	}

	// An invalid CIDR: the message is beside the field, and nothing is saved.
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#f-allowed_ips`), "203.0.113.7\n10.0.0.5/8"),
		chromedp.Click(chromedp.CSS(`form[data-testid=key-form] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`.field-error[data-field=allowed_ips]`)),
	)
	if err != nil {
		t.Fatalf("save an invalid CIDR: %v", err)
	}
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.field-error[data-field=allowed_ips]`)))
	if err != nil || !strings.Contains(msg, `"10.0.0.5/8" has host bits set: did you mean 10.0.0.0/8`) {
		t.Fatalf("message beside the IPs: %q %v", msg, err)
	}
	beside, _ := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`#f-allowed_ips`), "aria-describedby"))
	if beside.Value != "e-allowed_ips" {
		t.Errorf("the field is not described by its message: %q", beside.Value)
	}
	keys, err = srv.Store.APIKeysOf(t.Context(), u.AccountID)
	if err != nil || len(keys) != 1 {
		t.Fatalf("%d keys after an invalid save (%v), want 1", len(keys), err)
	}
	if stored := keys[0].AllowedIPs; stored != "203.0.113.7/32" {
		t.Fatalf("allowed IPs now %q", stored)
	}
}
