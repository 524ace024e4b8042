package handlers_test

import (
	"context"
	"database/sql"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// wantEntry is an audit entry a step should record; user "-" is no member.
type wantEntry struct {
	action, actor, user, field, before, after string
}

func (w wantEntry) String() string {
	return fmt.Sprintf("%s by %s (%s) %s: %q → %q", w.action, w.actor, w.user, w.field, w.before, w.after)
}

// auditLog reads an account's whole audit log, newest first.
func auditLog(t *testing.T, srv *testenv.Server, acct string) []models.AuditEntry {
	t.Helper()
	evs, _, err := srv.Store.AuditLog(context.Background(), acct, models.AuditFilter{}, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// auditStep checks that the step answered by res recorded exactly want in
// the account's log since the entry seen (an id, "" for none), each
// carrying the request's id and address, and returns the newest entry's id.
func auditStep(t *testing.T, srv *testenv.Server, acct, seen, step string, res *http.Response, want ...wantEntry) string {
	t.Helper()
	var got []string
	newest := seen
	for _, e := range auditLog(t, srv, acct) {
		if e.ID <= seen {
			break
		}
		newest = max(newest, e.ID)
		user := "-"
		if e.ActorUserID != nil {
			user = *e.ActorUserID
		}
		got = append(got, wantEntry{e.Action, e.Actor, user, e.Field, e.Before, e.After}.String())
		if e.IP != "127.0.0.1" || e.RequestID == "" || e.RequestID != res.Header.Get("X-TT-Request-ID") || e.AccountID != acct {
			t.Errorf("%s: %s recorded from %q in request %q, want 127.0.0.1 and %q", step, e.Action, e.IP, e.RequestID,
				res.Header.Get("X-TT-Request-ID"))
		}
		if e.At.IsZero() || time.Since(e.At) > time.Minute || e.At.Location() != time.UTC {
			t.Errorf("%s: %s at %v", step, e.Action, e.At)
		}
	}
	var ws []string
	for _, w := range want {
		ws = append(ws, w.String())
	}
	slices.Sort(got)
	slices.Sort(ws)
	if !slices.Equal(got, ws) {
		t.Errorf("%s recorded\n  %s\nwant\n  %s", step, strings.Join(got, "\n  "), strings.Join(ws, "\n  "))
	}
	return newest
}

// TestAuditRecordsEveryConsoleChange makes each kind of change an owner
// can make in the console and checks the entries each records: one per
// change (one per setting for a key edit), with the member, the values
// before and after, the address and the console request's id. A sign-in
// is recorded too; a failed one is not.
func TestAuditRecordsEveryConsoleChange(t *testing.T) {
	srv := testenv.NewServer(t)
	b := newBrowser(t, srv)
	res, _ := b.post("/signup", "/signup", url.Values{"email": {"ada@example.com"}, "password": {"correct horse battery"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign up: %d", res.StatusCode)
	}
	ada, err := srv.Store.UserByEmail(context.Background(), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	acct, me := ada.AccountID, ada.ID
	by := func(action, field, before, after string) wantEntry {
		return wantEntry{action, "ada@example.com", me, field, before, after}
	}
	seen := auditStep(t, srv, acct, "", "sign up", res, by(models.AuditAccountCreated, "", "", ""))

	res, _, _ = b.createKey(url.Values{"name": {"production"}, "rpm": {"60"}, "keep_bodies": {"on"}, "keep_bodies_days": {"3"}})
	k := onlyKey(t, srv, acct)
	seen = auditStep(t, srv, acct, seen, "create a key", res,
		by(models.AuditKeyCreated, "", "", k.Display()),
		by(models.AuditKeyKeepBodies, "keep_bodies", "not kept", "kept 3 days"))

	path := "/keys/" + k.ID
	form := url.Values{"name": {"prod"}, "models": {"tt-chat-small"}, "allowed_ips": {"203.0.113.7"}, "monthly_limit_usd": {"25"},
		"rpm": {"120"}, "expires_at": {""}, "keep_bodies": {"on"}, "keep_bodies_days": {"3"}}
	res, _ = b.post(path, path, form)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("edit: %d", res.StatusCode)
	}
	seen = auditStep(t, srv, acct, seen, "edit a key", res,
		by(models.AuditKeyUpdated, "name", "production", "prod"),
		by(models.AuditKeyUpdated, "models", "all models", "tt-chat-small"),
		by(models.AuditKeyUpdated, "allowed_ips", "any source", "203.0.113.7/32"),
		by(models.AuditKeyUpdated, "monthly_limit", "no limit", "$25.00"),
		by(models.AuditKeyUpdated, "rpm", "60", "120"))

	form.Del("keep_bodies")
	res, _ = b.post(path, path, form)
	seen = auditStep(t, srv, acct, seen, "stop keeping bodies", res,
		by(models.AuditKeyKeepBodies, "keep_bodies", "kept 3 days", "not kept"))

	res, _ = b.post(path, path, form)
	seen = auditStep(t, srv, acct, seen, "save without a change", res)

	for _, s := range []struct{ verb, action, from, to string }{
		{"disable", models.AuditKeyDisabled, "active", "disabled"},
		{"enable", models.AuditKeyEnabled, "disabled", "active"},
		{"revoke", models.AuditKeyRevoked, "active", "revoked"},
	} {
		res, _ = b.post(path, path+"/"+s.verb, nil)
		seen = auditStep(t, srv, acct, seen, s.verb, res, by(s.action, "status", s.from, s.to))
	}

	res, _ = b.post("/billing", "/billing/low-balance", url.Values{"low_balance_usd": {"20"}})
	seen = auditStep(t, srv, acct, seen, "low-balance warning on", res, by(models.AuditLowBalanceChanged, "low_balance", "off", "below $20.00"))
	res, _ = b.post("/billing", "/billing/low-balance", url.Values{"low_balance_usd": {""}})
	seen = auditStep(t, srv, acct, seen, "low-balance warning off", res, by(models.AuditLowBalanceChanged, "low_balance", "below $20.00", "off"))

	p := &payer{browser: b, account: acct}
	res, _ = p.recharge("25")
	sid := strings.TrimPrefix(res.Header.Get("Location"), "/billing/test-checkout/")
	pay, err := srv.Store.PaymentBySession(context.Background(), acct, sid)
	if err != nil {
		t.Fatal(err)
	}
	seen = auditStep(t, srv, acct, seen, "recharge", res, by(models.AuditRechargeStarted, "", "", "Pending"))
	if e := auditLog(t, srv, acct)[0]; e.Target != pay.ID || e.TargetLabel != "Recharge $25.00 (test)" {
		t.Errorf("recharge entry is about %q %q, want %s", e.Target, e.TargetLabel, pay.ID)
	}
	res = p.testAction(sid, "pay")
	seen = auditStep(t, srv, acct, seen, "pay", res,
		wantEntry{models.AuditPaymentCredited, models.ActorPaymentProvider, "-", "", "Pending", "Paid"})

	res, _ = b.post("/account", "/account/password", url.Values{"current_password": {"correct horse battery"},
		"new_password": {"a newer horse battery"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("change password: %d", res.StatusCode)
	}
	seen = auditStep(t, srv, acct, seen, "change password", res, by(models.AuditPasswordChanged, "", "", ""))

	other := newBrowser(t, srv)
	res, _ = other.login("ada@example.com", "not the password")
	seen = auditStep(t, srv, acct, seen, "a wrong password", res)
	res, _ = other.login("ada@example.com", "a newer horse battery")
	auditStep(t, srv, acct, seen, "sign in", res, by(models.AuditSignedIn, "", "", ""))
}

// TestAuditFailedChangesRecordNothing: a change refused for bad input, a
// status that does not allow it, or another account's key writes no
// entry, in either account.
func TestAuditFailedChangesRecordNothing(t *testing.T) {
	srv := testenv.NewServer(t)
	b, acct := keyOwner(t, srv, "ada@example.com")
	b.createKey(url.Values{"name": {"production"}})
	k := onlyKey(t, srv, acct)
	eve, eveAcct := keyOwner(t, srv, "eve@example.com")
	before, eveBefore := len(auditLog(t, srv, acct)), len(auditLog(t, srv, eveAcct))

	path := "/keys/" + k.ID
	for _, s := range []struct {
		name, form, path string
		vals             url.Values
		status           int
		who              *browser
	}{
		{"a key without a name", "/keys", "/keys", url.Values{"name": {""}}, http.StatusUnprocessableEntity, b},
		{"a rate limit of 0", path, path, url.Values{"name": {"x"}, "rpm": {"0"}}, http.StatusUnprocessableEntity, b},
		{"a bad IP", path, path, url.Values{"name": {"x"}, "rpm": {"60"}, "allowed_ips": {"10.0.0.300"}}, http.StatusUnprocessableEntity, b},
		{"enabling an active key", path, path + "/enable", nil, http.StatusSeeOther, b},
		{"a threshold in tenths of a cent", "/billing", "/billing/low-balance", url.Values{"low_balance_usd": {"1.234"}}, http.StatusUnprocessableEntity, b},
		{"a recharge below the minimum", "/billing", "/billing/recharge", url.Values{"amount_usd": {"3"}}, http.StatusUnprocessableEntity, b},
		{"a wrong current password", "/account", "/account/password", url.Values{"current_password": {"wrong password!"},
			"new_password": {"a newer horse battery"}}, http.StatusUnprocessableEntity, b},
		{"eve edits ada's key", "/keys", path, url.Values{"name": {"stolen"}, "rpm": {"60"}}, http.StatusNotFound, eve},
		{"eve revokes ada's key", "/keys", path + "/revoke", nil, http.StatusNotFound, eve},
	} {
		res, _ := s.who.post(s.form, s.path, s.vals)
		if res.StatusCode != s.status {
			t.Errorf("%s: %d, want %d", s.name, res.StatusCode, s.status)
		}
		if n, m := len(auditLog(t, srv, acct)), len(auditLog(t, srv, eveAcct)); n != before || m != eveBefore {
			t.Fatalf("%s recorded %d entries for ada and %d for eve", s.name, n-before, m-eveBefore)
		}
	}
}

// TestAuditWebhookCreditIsThePaymentProviders: a credit delivered by the
// provider's webhook is recorded once, as the payment provider's, with the
// webhook request's id; a redelivery records nothing.
func TestAuditWebhookCreditIsThePaymentProviders(t *testing.T) {
	srv := newBillingServer(t)
	p := newPayer(t, srv, "ada@example.com")
	res, _ := p.recharge("30")
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("recharge: %d", res.StatusCode)
	}
	pays, err := srv.Store.RecentPayments(context.Background(), p.account, 1)
	if err != nil || len(pays) != 1 {
		t.Fatalf("payments %v %v", pays, err)
	}
	pay := &pays[0]
	seen := auditLog(t, srv, p.account)[0].ID
	deliver := func(eventID string) *http.Response {
		payload := checkoutEvent(eventID, "checkout.session.completed", *pay.SessionID, pay.ID, 3000, "paid")
		now := time.Now()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/stripe", strings.NewReader(string(payload)))
		req.Header.Set("Stripe-Signature", fmt.Sprintf("t=%d,v1=%s", now.Unix(), stripeSig(payload, testWebhookSecret, now)))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		testenv.Body(t, res)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("webhook: %d", res.StatusCode)
		}
		return res
	}
	res = deliver("evt_audit_1")
	seen = auditStep(t, srv, p.account, seen, "webhook", res,
		wantEntry{models.AuditPaymentCredited, models.ActorPaymentProvider, "-", "", "Pending", "Paid"})
	res = deliver("evt_audit_1")
	auditStep(t, srv, p.account, seen, "the same event again", res)
	res = deliver("evt_audit_2")
	auditStep(t, srv, p.account, seen, "another event for the paid checkout", res)
}

// auditRows reads the rows of an audit page: each row's action and text.
func auditRows(t *testing.T, page string) (actions []string, texts []string) {
	t.Helper()
	testenv.Doc(t, page).Find(`[data-testid=audit-log] tbody tr`).Each(func(_ int, s *goquery.Selection) {
		a, _ := s.Attr("data-action")
		actions = append(actions, a)
		texts = append(texts, strings.Join(strings.Fields(s.Text()), " "))
	})
	return actions, texts
}

// TestAuditPage shows the log newest first with each entry in words,
// pages it with an Older link that neither skips nor repeats an entry,
// filters it by member, action and dates, and answers bad filters with a
// message beside the field rather than an error page.
func TestAuditPage(t *testing.T) {
	srv := testenv.NewServer(t)
	b, acct := keyOwner(t, srv, "ada@example.com")
	b.createKey(url.Values{"name": {"production"}})
	k := onlyKey(t, srv, acct)
	path := "/keys/" + k.ID
	b.post(path, path, url.Values{"name": {"production"}, "rpm": {"120"}})
	_, page := b.get("/audit")
	if testenv.Doc(t, page).Find(`nav.mainnav a[href="/audit"][aria-current=page]`).Length() != 1 {
		t.Error("the navigation does not mark the Audit log")
	}
	actions, texts := auditRows(t, page)
	if !slices.Equal(actions, []string{models.AuditKeyUpdated, models.AuditKeyCreated, models.AuditAccountCreated}) {
		t.Fatalf("actions %v", actions)
	}
	for _, want := range []string{"ada@example.com", "Key settings changed", "production", "Rate limit (requests per minute): 60 → 120",
		"127.0.0.1", "UTC"} {
		if !strings.Contains(texts[0], want) {
			t.Errorf("the edit reads %q, without %q", texts[0], want)
		}
	}
	if href, _ := testenv.Doc(t, page).Find(`[data-testid=audit-log] tbody tr a[href^="/keys/"]`).First().Attr("href"); href != path {
		t.Errorf("the entry links to %q, want the key", href)
	}

	// 120 sign-ins more: three pages of 50.
	u, _ := srv.Store.UserByEmail(context.Background(), "ada@example.com")
	by := models.Actor{UserID: u.ID, Name: u.Email, IP: "198.51.100.4", RequestID: "req_x"}
	for range 120 {
		if err := srv.Store.Audit(context.Background(), by.Stamp(models.AuditEntry{AccountID: acct, Action: models.AuditSignedIn})); err != nil {
			t.Fatal(err)
		}
	}
	var all []string
	next := "/audit"
	for pages := 0; next != ""; pages++ {
		if pages == 4 {
			t.Fatal("more than three pages")
		}
		res, page := b.get(next)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", next, res.StatusCode)
		}
		doc := testenv.Doc(t, page)
		doc.Find(`[data-testid=audit-log] tbody tr`).Each(func(_ int, s *goquery.Selection) {
			id, _ := s.Attr("data-entry")
			all = append(all, id)
		})
		next, _ = doc.Find(`[data-testid=next-page]`).Attr("href")
	}
	want := []string{}
	for _, e := range auditLog(t, srv, acct) {
		want = append(want, e.ID)
	}
	if len(want) != 123 || !slices.Equal(all, want) {
		t.Fatalf("the pages list %d entries, want the log's %d newest first", len(all), len(want))
	}

	// Filters.
	_, page = b.get("/audit?action=" + models.AuditKeyCreated)
	if actions, _ := auditRows(t, page); !slices.Equal(actions, []string{models.AuditKeyCreated}) {
		t.Errorf("filtered by action: %v", actions)
	}
	_, page = b.get("/audit?actor=" + u.ID + "&action=" + models.AuditSignedIn)
	if actions, _ := auditRows(t, page); len(actions) != 50 {
		t.Errorf("filtered by member and action: %d rows", len(actions))
	}
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format("2006-01-02")
	_, page = b.get("/audit?from=" + tomorrow)
	if actions, _ := auditRows(t, page); len(actions) != 0 || !strings.Contains(page, "No entries match these filters") {
		t.Errorf("from tomorrow: %d rows", len(actions))
	}
	_, page = b.get("/audit?to=" + tomorrow + "&action=" + models.AuditKeyCreated)
	if actions, _ := auditRows(t, page); len(actions) != 1 {
		t.Errorf("to tomorrow: %d rows", len(actions))
	}

	for _, c := range []struct{ query, field string }{
		{"from=yesterday", "from"},
		{"to=2026-02-30", "to"},
		{"action=key.deleted", "action"},
		{"actor=user_01JNOSUCHUSER00000000000000", "actor"},
		{"actor=" + url.QueryEscape(models.ActorPaymentProvider), "actor"}, // no such entry in this log
	} {
		res, page := b.get("/audit?" + c.query)
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", c.query, res.StatusCode)
		}
		if msg := testenv.Doc(t, page).Find(`.field-error[data-field=` + c.field + `]`).Text(); msg == "" {
			t.Errorf("%s: no message beside %s", c.query, c.field)
		}
	}
	res, page := b.get("/audit?cursor=nonsense")
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(page, "That page link is not valid") {
		t.Errorf("a forged cursor: %d", res.StatusCode)
	}
}

// TestAuditCSV exports the filtered log: a header, one line per entry,
// times in UTC, and a key name a spreadsheet would run as a formula kept
// as text.
func TestAuditCSV(t *testing.T) {
	srv := testenv.NewServer(t)
	b, acct := keyOwner(t, srv, "ada@example.com")
	b.createKey(url.Values{"name": {"=HYPERLINK(\"http://x\")"}})
	k := onlyKey(t, srv, acct)
	b.post("/keys/"+k.ID, "/keys/"+k.ID+"/disable", nil)

	read := func(query string) [][]string {
		t.Helper()
		res, body := b.get("/audit.csv" + query)
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") ||
			!strings.Contains(res.Header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("csv%s: %d %s", query, res.StatusCode, res.Header.Get("Content-Type"))
		}
		recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return recs
	}
	recs := read("")
	if strings.Join(recs[0], ",") != "id,at_utc,actor,actor_user_id,action,target,target_label,field,before,after,ip,request_id" {
		t.Fatalf("header %v", recs[0])
	}
	if len(recs) != 4 {
		t.Fatalf("%d lines, want a header and 3 entries", len(recs))
	}
	dis, created := recs[1], recs[2]
	if dis[4] != models.AuditKeyDisabled || dis[7] != "status" || dis[8] != "active" || dis[9] != "disabled" ||
		dis[2] != "ada@example.com" || dis[10] != "127.0.0.1" || !strings.HasPrefix(dis[11], "req_") {
		t.Errorf("disable line %v", dis)
	}
	if at, err := time.Parse("2006-01-02T15:04:05.000Z", dis[1]); err != nil || time.Since(at) > time.Minute {
		t.Errorf("time %q: %v", dis[1], err)
	}
	if created[4] != models.AuditKeyCreated || created[6] != "'=HYPERLINK(\"http://x\")" {
		t.Errorf("created line %v: the name is not kept as text", created)
	}
	if recs := read("?action=" + models.AuditKeyDisabled); len(recs) != 2 || recs[1][0] != dis[0] {
		t.Errorf("filtered: %v", recs)
	}
	res, body := b.get("/audit.csv?from=notadate")
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "from:") {
		t.Errorf("bad filter: %d %q", res.StatusCode, body)
	}
}

// TestAuditTenantIsolation: one account's page, export and filters never
// show another's entries, and a member who is neither owner nor admin
// does not see the log at all.
func TestAuditTenantIsolation(t *testing.T) {
	path, dbURL := testenv.EmptyDB(t)
	db, err := models.Open(path, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := testenv.NewServerOn(t, db)
	ada, _ := keyOwner(t, srv, "ada@example.com")
	ada.createKey(url.Values{"name": {"ada-secret-project"}})
	adaUser, _ := srv.Store.UserByEmail(context.Background(), "ada@example.com")
	eve, _ := keyOwner(t, srv, "eve@example.com")

	for _, path := range []string{"/audit", "/audit.csv", "/audit?action=" + models.AuditKeyCreated} {
		_, page := eve.get(path)
		if strings.Contains(page, "ada") || strings.Contains(page, adaUser.ID) {
			t.Errorf("eve's %s shows ada's entries", path)
		}
	}
	res, page := eve.get("/audit?actor=" + adaUser.ID)
	if res.StatusCode != http.StatusBadRequest || strings.Contains(page, "ada-secret-project") {
		t.Errorf("eve filtering by ada: %d", res.StatusCode)
	}
	res, body := eve.get("/audit.csv?actor=" + adaUser.ID)
	if res.StatusCode != http.StatusBadRequest || strings.Contains(body, "ada") {
		t.Errorf("eve exporting ada's: %d %q", res.StatusCode, body)
	}

	// A member who is neither owner nor admin.
	// (Her role is set in the database.)
	driver, dsn, update := "sqlite3", path, `UPDATE memberships SET role = 'developer' WHERE user_id = ?`
	if dbURL != "" {
		driver, dsn, update = "pgx", dbURL, `UPDATE memberships SET role = 'developer' WHERE user_id = $1`
	}
	raw, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(update, adaUser.ID); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/audit", "/audit.csv"} {
		if res, page := ada.get(path); res.StatusCode != http.StatusForbidden || strings.Contains(page, "ada-secret-project") {
			t.Errorf("a developer's %s: %d", path, res.StatusCode)
		}
	}
	if _, page := ada.get("/"); testenv.Doc(t, page).Find(`nav.mainnav a[href="/audit"]`).Length() != 0 {
		t.Error("a developer's navigation offers the audit log")
	}
	if _, page := eve.get("/"); testenv.Doc(t, page).Find(`nav.mainnav a[href="/audit"]`).Length() != 1 {
		t.Error("an owner's navigation lacks the audit log")
	}
}
