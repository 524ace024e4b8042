package handlers_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// TestBrowserAuditLog drives real Chromium: change a key's rate limit,
// follow the navigation to the audit log, find the change at the top with
// who made it and the values before and after, then filter the log by an
// action and see only that action's entries.
func TestBrowserAuditLog(t *testing.T) {
	srv := testenv.NewServer(t)
	acct := testenv.FundedKey(t, srv.Store, "ada@example.com", 0, models.KeyInput{Name: "production"})
	ctx := testenv.Browser(t)
	signIn(t, ctx, srv, acct.Email, "/keys/"+acct.Key.ID)

	err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#f-rpm`), "120"),
		chromedp.Click(chromedp.CSS(`form[data-testid=key-form] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)),
		chromedp.Click(chromedp.CSS(`nav.mainnav a[href="/audit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=audit-log]`)),
	)
	if err != nil {
		t.Fatalf("edit the key and open the audit log: %v", err)
	}
	type row struct{ Action, Text string }
	rows := func() []row {
		t.Helper()
		rs, err := chromedp.Run(ctx, chromedp.Evaluate[[]row](`Array.from(document.querySelectorAll("[data-testid=audit-log] tbody tr")).map(
			tr => ({action: tr.dataset.action, text: tr.innerText.replace(/\s+/g, " ")}))`))
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	rs := rows()
	if len(rs) < 2 || rs[0].Action != models.AuditKeyUpdated {
		t.Fatalf("the log shows %+v, the key's edit first", rs)
	}
	for _, want := range []string{"ada@example.com", "Key settings changed", "production", "Rate limit (requests per minute): 60 → 120", "127.0.0.1"} {
		if !strings.Contains(rs[0].Text, want) {
			t.Errorf("the edit reads %q, without %q", rs[0].Text, want)
		}
	}

	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#f-action`), models.AuditKeyCreated),
		chromedp.Click(chromedp.CSS(`form.filters button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=clear-filters]`)),
	)
	if err != nil {
		t.Fatalf("filter by action: %v", err)
	}
	rs = rows()
	if len(rs) != 1 || rs[0].Action != models.AuditKeyCreated || !strings.Contains(rs[0].Text, "admin CLI") {
		t.Fatalf("filtered to key creations, the log shows %+v", rs)
	}
	if v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#f-action`))); err != nil || v != models.AuditKeyCreated {
		t.Errorf("the filter shows %q (%v) after applying it", v, err)
	}
}
