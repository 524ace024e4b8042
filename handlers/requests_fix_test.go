package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// rqConsole signs the platform's owner in to the console.
func rqConsole(t *testing.T, p *platform) *browser {
	t.Helper()
	b := newBrowser(t, p.srv)
	if res, _ := b.login("owner@example.com", rqPassword); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", res.StatusCode)
	}
	return b
}

func rqKey(t *testing.T, p *platform, account, id string) *models.APIKey {
	t.Helper()
	k, err := p.srv.Store.APIKeyOf(context.Background(), account, id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rqFix opens a failed call's page, checks the fix offered, applies it
// and returns the page shown after.
func rqFix(t *testing.T, b *browser, id, kind, action string, vals url.Values) string {
	t.Helper()
	_, page := b.get("/requests/" + id)
	doc := testenv.Doc(t, page)
	if got, _ := doc.Find(`[data-testid=fix]`).Attr("data-fix"); got != kind {
		t.Fatalf("fix offered %q, want %q", got, kind)
	}
	form := doc.Find(`[data-testid=fix] form`)
	if got, _ := form.Attr("action"); got != "/requests/"+id+"/fix/"+action {
		t.Fatalf("fix form posts to %q", got)
	}
	if c, _ := form.Attr("data-confirm"); c == "" {
		t.Fatal("the fix does not ask for confirmation")
	}
	res, _ := b.post("/requests/"+id, "/requests/"+id+"/fix/"+action, vals)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/requests/"+id {
		t.Fatalf("fix: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	// The audit log has it, as the owner's, in this request.
	owner, err := b.srv.Store.UserByEmail(context.Background(), "owner@example.com")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"allow-ip": models.AuditFixAllowIP, "add-model": models.AuditFixAddModel, "raise-limit": models.AuditFixRaiseLimit}[action]
	if log := auditLog(t, b.srv, owner.AccountID); len(log) == 0 || log[0].Action != want ||
		log[0].RequestID != res.Header.Get("X-TT-Request-ID") || log[0].ActorUserID == nil || *log[0].ActorUserID != owner.ID ||
		!strings.HasPrefix(log[0].Target, "key_") || log[0].Before == log[0].After {
		t.Errorf("the fix's audit entry: %+v, want %s by the owner in request %s", log, want, res.Header.Get("X-TT-Request-ID"))
	}
	_, after := b.get("/requests/" + id)
	if testenv.Doc(t, after).Find(`[data-testid=fix-done]`).Length() != 1 {
		t.Fatal("after the fix the page does not say it is in place")
	}
	return after
}

func TestFixAllowIP(t *testing.T) {
	p := newPlatform(t)
	k, secret := p.newKey(p.account, models.KeyInput{Name: "office", AllowedIPs: "203.0.113.7"})
	r := p.chat(secret, 10, nil)
	if r.res.StatusCode != http.StatusForbidden {
		t.Fatalf("call from 127.0.0.1: %d", r.res.StatusCode)
	}
	b := rqConsole(t, p)
	after := rqFix(t, b, r.id(), "allow_ip", "allow-ip", nil)
	if !strings.Contains(after, "Allowed 127.0.0.1 on key “office”") {
		t.Error("no message saying what changed")
	}
	got := rqKey(t, p, p.account, k.ID)
	if got.AllowedIPs != "203.0.113.7/32\n127.0.0.1/32" || got.Models != k.Models || got.RPM != k.RPM {
		t.Fatalf("key after the fix: ips %q models %q rpm %d; want exactly 127.0.0.1 added", got.AllowedIPs, got.Models, got.RPM)
	}
	if r2 := p.chat(secret, 10, nil); r2.res.StatusCode != http.StatusOK {
		t.Fatalf("retried call: %d %s", r2.res.StatusCode, r2.body)
	}
	// Applying it again changes nothing more.
	if res, _ := b.post("/requests/"+r.id(), "/requests/"+r.id()+"/fix/allow-ip", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("second fix: %d", res.StatusCode)
	}
	if again := rqKey(t, p, p.account, k.ID); again.AllowedIPs != got.AllowedIPs {
		t.Fatalf("second fix changed the list to %q", again.AllowedIPs)
	}
	evs, _, err := p.srv.Store.AuditLog(context.Background(), p.account, models.AuditFilter{Target: k.ID}, 10)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Field == "allowed_ips" {
			n++
			if e.Actor != "owner@example.com" || e.Action != models.AuditFixAllowIP {
				t.Errorf("event by %q", e.Actor)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d allowed_ips events, want 1", n)
	}
}

func TestFixAddModel(t *testing.T) {
	p := newPlatform(t)
	k, secret := p.newKey(p.account, models.KeyInput{Name: "small only", Models: []string{"tt-chat-small"}})
	r := p.do("POST", "/v1/chat/completions", secret, chatBody("tt-chat-large", 10, nil))
	if r.res.StatusCode != http.StatusForbidden {
		t.Fatalf("call: %d", r.res.StatusCode)
	}
	b := rqConsole(t, p)
	rqFix(t, b, r.id(), "add_model", "add-model", nil)
	got := rqKey(t, p, p.account, k.ID)
	if got.Models != "tt-chat-large,tt-chat-small" || got.AllowedIPs != k.AllowedIPs {
		t.Fatalf("models %q after the fix, want exactly tt-chat-large added", got.Models)
	}
	if r2 := p.do("POST", "/v1/chat/completions", secret, chatBody("tt-chat-large", 10, nil)); r2.res.StatusCode != http.StatusOK {
		t.Fatalf("retried call: %d %s", r2.res.StatusCode, r2.body)
	}
}

func TestFixRaiseMonthlyLimit(t *testing.T) {
	p := newPlatform(t)
	k, secret := p.newKey(p.account, models.KeyInput{Name: "tiny", MonthlyLimitUSD: "0.00001"})
	r := p.chat(secret, 10, nil)
	if r.res.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("call: %d", r.res.StatusCode)
	}
	b := rqConsole(t, p)
	_, page := b.get("/requests/" + r.id())
	if v := testenv.FieldValue(t, page, "monthly_limit_usd"); v == "" {
		t.Fatal("the new limit is not prefilled")
	}
	// A bad value is a message beside the field and changes nothing.
	res, page := b.post("/requests/"+r.id(), "/requests/"+r.id()+"/fix/raise-limit", url.Values{"monthly_limit_usd": {"lots"}})
	if res.StatusCode != http.StatusUnprocessableEntity ||
		testenv.Doc(t, page).Find(`.field-error[data-field=monthly_limit_usd]`).Length() != 1 {
		t.Fatalf("bad limit: %d", res.StatusCode)
	}
	res, _ = b.post("/requests/"+r.id(), "/requests/"+r.id()+"/fix/raise-limit", url.Values{"monthly_limit_usd": {"0.000001"}})
	if res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("lowering the limit through the fix: %d, want 422", res.StatusCode)
	}
	if got := rqKey(t, p, p.account, k.ID); *got.MonthlyLimitMicros != 10 {
		t.Fatalf("limit changed by refused input: %d", *got.MonthlyLimitMicros)
	}
	rqFix(t, b, r.id(), "raise_limit", "raise-limit", url.Values{"monthly_limit_usd": {"25"}})
	got := rqKey(t, p, p.account, k.ID)
	if got.MonthlyLimitMicros == nil || *got.MonthlyLimitMicros != 25*models.MicrosPerUSD || got.RPM != k.RPM {
		t.Fatalf("limit after the fix: %v", got.MonthlyLimitMicros)
	}
	if r2 := p.chat(secret, 10, nil); r2.res.StatusCode != http.StatusOK {
		t.Fatalf("retried call: %d %s", r2.res.StatusCode, r2.body)
	}
}

func TestFixBillingShortfallLinksToRecharge(t *testing.T) {
	p := newPlatform(t)
	if _, err := p.srv.Store.Credit(context.Background(), p.account, -10*models.MicrosPerUSD, models.LedgerAdjustment,
		"empty the wallet", models.LedgerRef{}); err != nil {
		t.Fatal(err)
	}
	r := p.chat(p.secret, 16384, nil) // hold ≈ $0.0246
	if r.res.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("call: %d %s", r.res.StatusCode, r.body)
	}
	hold := chatHold(t, 16384, nil)
	row, err := p.srv.Store.RequestOf(context.Background(), p.account, r.id())
	if err != nil || row.RefusedHoldMicros != hold || row.HoldMicros != 0 {
		t.Fatalf("the refused call's row: %+v, %v; want a refused hold of %d and no hold", row, err, hold)
	}
	b := rqConsole(t, p)
	_, page := b.get("/requests/" + r.id())
	doc := testenv.Doc(t, page)
	if text := doc.Find(`[data-testid=fix]`).Text(); !strings.Contains(text, models.FormatUSD(hold)) {
		t.Fatalf("the fix does not state the hold the call needed, %s: %q", models.FormatUSD(hold), text)
	}
	href, _ := doc.Find(`[data-testid=fix-link]`).Attr("href")
	u, err := url.Parse(href)
	if err != nil || u.Path != "/billing" {
		t.Fatalf("recharge link %q", href)
	}
	amount, ok := models.ParseUSD(u.Query().Get("amount_usd"), false)
	if !ok || amount < hold {
		t.Fatalf("recharge prefilled with %q, want at least the shortfall %d", u.Query().Get("amount_usd"), hold)
	}
	if _, err := p.srv.Store.Credit(context.Background(), p.account, amount, models.LedgerRecharge, "recharge", models.LedgerRef{}); err != nil {
		t.Fatal(err)
	}
	if r2 := p.chat(p.secret, 16384, nil); r2.res.StatusCode != http.StatusOK {
		t.Fatalf("after recharging the suggested amount: %d %s", r2.res.StatusCode, r2.body)
	}
	_, page = b.get("/requests/" + r.id())
	if testenv.Doc(t, page).Find(`[data-testid=fix-done]`).Length() != 1 {
		t.Fatal("after the recharge the page still asks for one")
	}
}

func TestFixHintsForOtherErrors(t *testing.T) {
	p := newPlatform(t)
	slow, slowSecret := p.newKey(p.account, models.KeyInput{Name: "slow", RPM: "1"})
	p.chat(slowSecret, 10, nil)
	limited := p.chat(slowSecret, 10, nil)
	missing := p.do("POST", "/v1/v1/chat/completions", p.secret, "{}")
	failed := p.chat(p.secret, 10, map[string]string{"sim_status": "503"})
	b := rqConsole(t, p)
	cases := []struct {
		id, kind string
		has      []string
	}{
		{limited.id(), "rate_limited", []string{"1 request per minute", "Retry-After", "/keys/" + slow.ID}},
		{missing.id(), "not_found", []string{p.srv.URL + "/v1/chat/completions"}},
		{failed.id(), "retry", []string{"retry with backoff", "Not charged"}},
	}
	for _, tc := range cases {
		res, page := b.get("/requests/" + tc.id)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", tc.kind, res.StatusCode)
		}
		fix := testenv.Doc(t, page).Find(`[data-testid=fix]`)
		if k, _ := fix.Attr("data-fix"); k != tc.kind {
			t.Fatalf("fix %q, want %q", k, tc.kind)
		}
		html, _ := fix.Html()
		for _, want := range tc.has {
			if !strings.Contains(html, want) {
				t.Errorf("%s fix lacks %q", tc.kind, want)
			}
		}
	}
}

func TestRequestDetailShowsEverything(t *testing.T) {
	p := newPlatform(t)
	r := p.chat(p.secret, 100, nil)
	if r.res.StatusCode != http.StatusOK {
		t.Fatalf("call: %d %s", r.res.StatusCode, r.body)
	}
	row := p.row(p.account, r.id())
	b := rqConsole(t, p)
	_, page := b.get("/requests/" + r.id())
	doc := testenv.Doc(t, page)
	text := doc.Text()
	for _, want := range []string{
		r.id(), "POST", "/v1/chat/completions", "tt-chat-small", "default", p.key.Display(), "127.0.0.1",
		models.OutcomeCharged, models.OutcomeRule(models.OutcomeCharged),
		models.FormatUSDs(row.HoldMicros, row.ChargedMicros)[0], models.FormatUSDs(row.HoldMicros, row.ChargedMicros)[1],
		"Hold placed", "Captured", "balance after", r.res.Header.Get("X-RateLimit-Limit") + " requests per minute",
		r.res.Header.Get("X-RateLimit-Reset"),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("detail lacks %q", want)
		}
	}
	ledger, err := p.srv.Store.RequestLedger(context.Background(), p.account, r.id())
	if err != nil || len(ledger) != 1 {
		t.Fatalf("ledger entries of the call: %d %v", len(ledger), err)
	}
	if !strings.Contains(text, ledger[0].ID) {
		t.Error("the timeline does not link the ledger entry")
	}
	support := doc.Find(`[data-testid=support-text]`).Text()
	copyText, _ := doc.Find(`[data-testid=copy-support]`).Attr("data-copy")
	if support != copyText {
		t.Error("the copy button does not copy the For support block")
	}
	for _, want := range []string{"X-TT-Request-ID: " + r.id(), " UTC", "Model: tt-chat-small", "API path: POST /v1/chat/completions"} {
		if !strings.Contains(support, want) {
			t.Errorf("For support lacks %q: %q", want, support)
		}
	}

	// A rejected call shows its error body as returned and the rule.
	_, scoped := p.newKey(p.account, models.KeyInput{Name: "s", Models: []string{"tt-chat-small"}})
	bad := p.do("POST", "/v1/chat/completions", scoped, chatBody("tt-chat-large", 10, nil))
	_, page = b.get("/requests/" + bad.id())
	doc = testenv.Doc(t, page)
	if got := doc.Find(`[data-testid=error-body]`).Text(); got != strings.TrimSpace(bad.body) {
		t.Errorf("error body shown %q, returned %q", got, bad.body)
	}
	if got := doc.Find(`[data-testid=outcome-rule]`).Text(); !strings.Contains(got, "Rejected before processing — not charged") {
		t.Errorf("rule %q", got)
	}
	if !strings.Contains(doc.Find(`[data-testid=support-text]`).Text(), strings.TrimSpace(bad.body)) {
		t.Error("For support lacks the full error body")
	}
}

func TestOverviewFigures(t *testing.T) {
	srv := testenv.NewServer(t)
	a := rqNewAccount(t, srv, "ada@example.com")
	now := time.Now().UTC()
	ctx := context.Background()
	if _, err := srv.Store.Credit(ctx, a.id, 5*models.MicrosPerUSD, models.LedgerAdjustment, "funds", models.LedgerRef{}); err != nil {
		t.Fatal(err)
	}
	for _, cost := range []int64{1_234_567, 10_000} {
		r := rqLog(t, srv, models.Request{AccountID: &a.id, KeyID: &a.key.ID, Status: 200, ChargedMicros: cost,
			BillingOutcome: models.OutcomeCharged}, now)
		if _, err := srv.Store.Credit(ctx, a.id, -cost, models.LedgerCharge, "API call "+r.ID, models.LedgerRef{RequestID: r.ID}); err != nil {
			t.Fatal(err)
		}
	}
	rqLog(t, srv, models.Request{AccountID: &a.id, KeyID: &a.key.ID, Status: 429, ErrorType: "rate_limited",
		ErrorMessage: "slow down"}, now)
	rqLog(t, srv, models.Request{AccountID: &a.id, KeyID: &a.key.ID, Status: 502, ErrorType: "upstream_error"}, now)
	_, page := a.b.get("/")
	doc := testenv.Doc(t, page)
	// Spend and balance to the micro-dollar, never rounded: $5 less $1.234567 and $0.01.
	checks := map[string]string{"requests-today": "4", "error-rate-today": "50.0%", "mtd-spend": "$1.244567", "balance": "$3.755433"}
	for id, want := range checks {
		if got := strings.TrimSpace(doc.Find(`[data-testid=` + id + `]`).Text()); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}
	if n := doc.Find(`[data-testid=latest-failed] tbody tr`).Length(); n != 2 {
		t.Errorf("%d latest failed requests, want 2", n)
	}
	if doc.Find(`[data-testid=overview-chart] svg`).Length() != 2 {
		t.Error("no 30-day charts")
	}
}
