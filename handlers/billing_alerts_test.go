package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// TestLowBalanceAlertOncePerCrossing: calls whose holds take the available
// balance below the low-balance warning make one alert (on Overview and
// by mail), however many of them; it comes again only after money takes
// the balance back above the warning and it is crossed anew. Dismissed,
// it leaves Overview.
func TestLowBalanceAlertOncePerCrossing(t *testing.T) {
	box := &mailbox{}
	srv := testenv.NewServer(t, topupOptions(box))
	p := newPayer(t, srv, "ada@example.com")
	p.credit(5.01)
	if res, _ := p.post("/billing", "/billing/low-balance", url.Values{"low_balance_usd": {"5"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatal("set the low-balance warning")
	}
	_, secret, err := srv.Store.CreateAPIKey(context.Background(), p.account, models.AdminCLI, models.KeyInput{Name: "k", RPM: "1000"})
	if err != nil {
		t.Fatal(err)
	}
	calls := func(n int) {
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(chatBody("tt-chat-small", 16384, nil)))
				req.Header.Set("Authorization", "Bearer "+secret)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				testenv.Body(t, res)
			}()
		}
		wg.Wait()
	}
	calls(20) // each hold takes $5.01 below $5.00
	p.round()
	p.round()
	calls(5)
	p.round()
	if ms := box.with("Available balance below $5.00"); len(ms) != 1 || !strings.Contains(ms[0].text, "low-balance warning of $5.00") {
		t.Fatalf("low-balance mails: %+v, want one", ms)
	}
	if count(p.overviewAlerts(), models.AlertLowBalance) != 1 {
		t.Fatal("Overview does not show the low-balance alert once")
	}

	// Dismissed, it goes; another account cannot dismiss it.
	alerts, _ := srv.Store.OpenAlerts(context.Background(), p.account, 10)
	other := newPayer(t, srv, "eve@example.com")
	if res, _ := other.post("/", "/alerts/"+alerts[0].ID+"/dismiss", nil); res.StatusCode != http.StatusNotFound {
		t.Fatalf("another account's dismiss: %d, want 404", res.StatusCode)
	}
	if res, _ := p.post("/", "/alerts/"+alerts[0].ID+"/dismiss", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("dismiss: %d", res.StatusCode)
	}
	if len(p.overviewAlerts()) != 0 {
		t.Fatal("a dismissed alert is still on Overview")
	}

	// Money above the warning arms it again; the next crossing alerts again.
	p.credit(1)
	p.credit(-1.50)
	p.round()
	if n := len(box.with("Available balance below")); n != 2 {
		t.Fatalf("%d low-balance mails after a second crossing, want 2", n)
	}
}

// TestKeyLimitAlertsOnceAMonth: a key reaching 80% and then 100% of its
// monthly limit makes one alert for each, however many rounds look, on
// every instance.
func TestKeyLimitAlertsOnceAMonth(t *testing.T) {
	box := &mailbox{}
	srv := testenv.NewServer(t, topupOptions(box))
	p := newPayer(t, srv, "ada@example.com")
	p.credit(10)
	ctx := context.Background()
	// The key is made by a developer of the account: its alerts reach them
	// as well as the owner.
	owner, err := srv.Store.UserByEmail(ctx, "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	_, token, err := srv.Store.Invite(ctx, memberActor(t, srv, owner.ID), p.account, "dev@example.com", models.RoleDeveloper, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dev, _, err := srv.Store.SignupByInvitation(ctx, models.Actor{}, token, testenv.Password, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	k, _, err := srv.Store.CreateAPIKey(ctx, p.account, models.Actor{UserID: dev.ID, Name: dev.Email}, models.KeyInput{Name: "batch jobs", MonthlyLimitUSD: "1"})
	if err != nil {
		t.Fatal(err)
	}
	limit := int64(models.MicrosPerUSD)
	spend := func(cost int64) {
		t.Helper()
		r := &models.Request{ID: srv.Store.NewRequestID(), AccountID: &p.account, KeyID: &k.ID, Method: "POST",
			Path: "/v1/chat/completions", Model: "tt-chat-small", Status: 200, CreatedAt: time.Now().UTC()}
		h, err := srv.Store.StartCall(ctx, r, k.ID, &limit, cost, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Store.FinishCall(ctx, h, r, cost); err != nil {
			t.Fatal(err)
		}
	}
	rounds := func() {
		p.round()
		p.round()
	}
	spend(790_000)
	rounds()
	if ms := box.with(""); len(ms) != 0 {
		t.Fatalf("mails at 79%%: %+v", ms)
	}
	spend(10_000) // 80%
	rounds()
	spend(100_000) // 90%
	rounds()
	if ms := box.with("has used 80% of its monthly limit"); len(ms) != 2 || ms[0].to == ms[1].to ||
		!slices.ContainsFunc(ms, func(m sentMail) bool { return m.to == "dev@example.com" }) || !strings.Contains(ms[0].subject, "batch jobs") ||
		!strings.Contains(ms[0].text, "$0.90 of its $1.00 monthly limit") && !strings.Contains(ms[0].text, "$0.80 of its $1.00 monthly limit") {
		t.Fatalf("80%% mails: %+v", ms)
	}
	spend(100_000) // 100%
	rounds()
	rounds()
	if ms := box.with("reached its monthly limit"); len(ms) != 2 || !strings.Contains(ms[0].text, "/keys/"+k.ID) {
		t.Fatalf("100%% mails: %+v", ms)
	}
	if n := len(box.with("monthly limit")); n != 4 {
		t.Fatalf("%d key limit mails, want 4 (two to each)", n)
	}
	kinds := p.overviewAlerts()
	if count(kinds, models.AlertKeyLimit80) != 1 || count(kinds, models.AlertKeyLimit100) != 1 {
		t.Fatalf("Overview alerts %v, want one 80%% and one 100%%", kinds)
	}
	// Another month has its own: nothing is used there yet.
	if n, err := srv.Store.TakeKeyLimitAlerts(ctx, time.Now().AddDate(0, 1, 0)); err != nil || n != 0 {
		t.Fatalf("next month: %d alerts, %v", n, err)
	}
}
