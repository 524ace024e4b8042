package handlers_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// TestBrowserDeveloperJoinsByInvitation drives real Chromium through a
// team's first day: the owner invites a developer on the Team page; the
// developer opens the link, picks a password, creates a key, and finds
// Billing without a recharge button, while a recharge posted anyway is
// refused with 403 and creates no payment. On a phone, the header's
// switcher shows the account and role, and switches to another account.
func TestBrowserDeveloperJoinsByInvitation(t *testing.T) {
	srv := testenv.NewServer(t)
	acct := testenv.FundedKey(t, srv.Store, "owner@example.com", models.MicrosPerUSD, models.KeyInput{Name: "k", RPM: "60"})
	ctx := testenv.Browser(t)

	signIn(t, ctx, srv, "owner@example.com", "/team")
	err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`form[data-testid=invite-form] #f-email`), "dev@example.com"),
		chromedp.SetValue(chromedp.CSS(`form[data-testid=invite-form] #f-role`), "developer"),
		chromedp.Click(chromedp.CSS(`form[data-testid=invite-form] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=invitation-link] code`)),
	)
	if err != nil {
		t.Fatalf("invite: %v", err)
	}
	l := &layoutCalls{srv: srv, ctx: ctx}
	l.screenshot(t, "desktop-team-invited")
	shown, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=invitation-link] code`)))
	if err != nil {
		t.Fatal(err)
	}
	link, err := url.Parse(strings.TrimSpace(shown))
	if err != nil || !strings.HasPrefix(link.Path, "/invitations/") {
		t.Fatalf("the page shows %q, not an invitation link", shown)
	}

	// The developer, in a browser signed out.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/login"]`)),
		chromedp.Navigate(srv.URL+link.Path),
		chromedp.WaitVisible(chromedp.CSS(`form[data-testid=invitation-signup] #f-password`)),
	)
	if err != nil {
		t.Fatalf("open the link: %v", err)
	}
	title, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main h1`)))
	if title != "Join owner@example.com as developer" {
		t.Errorf("the link's page says %q", title)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#f-password`), testenv.Password),
		chromedp.Click(chromedp.CSS(`form[data-testid=invitation-signup] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=account-role]`)),
	)
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	if role, _ := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`[data-testid=account-role]`))); role != "developer" {
		t.Errorf("the header shows the role %q, want developer", role)
	}

	err = chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/keys"),
		chromedp.WaitVisible(chromedp.CSS(`form[data-testid=key-form] #f-name`)),
		chromedp.SendKeys(chromedp.CSS(`#f-name`), "dev laptop"),
		chromedp.Click(chromedp.CSS(`form[data-testid=key-form] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=new-secret]`)),
	)
	if err != nil {
		t.Fatalf("the developer creates a key: %v", err)
	}
	keys, err := srv.Store.APIKeysOf(context.Background(), acct.ID)
	if err != nil || len(keys) != 2 || keys[0].Name != "dev laptop" && keys[1].Name != "dev laptop" {
		t.Fatalf("the account's keys: %d (%v), want the developer's among 2", len(keys), err)
	}

	err = chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/billing"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=recharge-not-allowed]`)),
	)
	if err != nil {
		t.Fatalf("billing as a developer: %v", err)
	}
	forms, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('form[action="/billing/recharge"], [data-testid^=preset-]').length`))
	if err != nil || forms != 0 {
		t.Errorf("Billing shows a developer %d recharge forms or buttons (%v)", forms, err)
	}
	// Posted anyway, with the page's own CSRF token: 403, and no payment.
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch("/billing/recharge", {method: "POST",
		body: new URLSearchParams({_csrf: document.querySelector("input[name=_csrf]").value, amount_usd: "25"})}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	if err != nil || status != 403 {
		t.Errorf("a developer's recharge posted anyway: %d (%v), want 403", status, err)
	}
	if pays, err := srv.Store.RecentPayments(context.Background(), acct.ID, 10); err != nil || len(pays) != 0 {
		t.Errorf("the refused recharge left %d payments (%v)", len(pays), err)
	}

	// The developer joins a second account; on a phone the header shows
	// where they are and switches.
	other := testenv.FundedKey(t, srv.Store, "ops@example.com", 0, models.KeyInput{Name: "k", RPM: "60"})
	dev, _ := srv.Store.UserByEmail(context.Background(), "dev@example.com")
	_, token, err := srv.Store.Invite(context.Background(), memberActor(t, srv, mustUser(t, srv, "ops@example.com")), other.ID, "dev@example.com", "viewer", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Store.AcceptInvitation(context.Background(), models.Actor{}, token, dev, time.Now()); err != nil {
		t.Fatal(err)
	}
	l.viewport(t, 390, 844, true)
	l.open(t, "/team")
	l.screenshot(t, "phone-team")
	l.noSidewaysScroll(t, "/team at 390 px")
	if b := l.boxOf(t, `[data-testid=account-switcher] summary`); !b.inView() || !strings.Contains(b.Text, "owner@example.com") || !strings.Contains(b.Text, "developer") {
		t.Errorf("the switcher on a phone is %s", b)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid=account-switcher] summary`))); err != nil {
		t.Fatal(err)
	}
	opt := `[data-testid="switch-` + other.ID + `"]`
	if b := l.boxOf(t, opt); !b.inView() || !strings.Contains(b.Text, "ops@example.com") || !strings.Contains(b.Text, "viewer") {
		t.Errorf("the other account in the open switcher on a phone is %s", b)
	}
	l.screenshot(t, "phone-switcher")
	l.noSidewaysScroll(t, "/team at 390 px, switcher open")
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(opt)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)),
	)
	if err != nil {
		t.Fatalf("switch: %v", err)
	}
	name, _ := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`[data-testid=account-name]`)))
	role, _ := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`[data-testid=account-role]`)))
	if name != "ops@example.com" || role != "viewer" {
		t.Errorf("after switching, the header shows %q as %q, want ops@example.com as viewer", name, role)
	}

	// On a desk, the open switcher stays in the window too.
	l.viewport(t, 1280, 900, false)
	l.open(t, "/")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid=account-switcher] summary`))); err != nil {
		t.Fatal(err)
	}
	back := `[data-testid="switch-` + acct.ID + `"]`
	if b := l.boxOf(t, back); !b.inView() || !strings.Contains(b.Text, "owner@example.com") {
		t.Errorf("the other account in the open switcher at 1280 px is %s", b)
	}
	l.screenshot(t, "desktop-switcher")
	l.noSidewaysScroll(t, "/ at 1280 px, switcher open")
}
