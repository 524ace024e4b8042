package handlers_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/gorilla/sessions"

	"ttconsole/handlers"
	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// lockedBuffer collects log lines written by the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newLoggedServer is testenv.NewServer with its log kept, so a test can
// prove what never reaches it.
func newLoggedServer(t *testing.T) (*testenv.Server, *lockedBuffer) {
	t.Helper()
	db := testenv.DB(t)
	store := models.NewStore(db)
	key, err := store.SecretSetting(context.Background(), "session_key", 32)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	app := &handlers.App{Store: store, Log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Cookies: sessions.NewCookieStore(key)}
	e, err := app.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &testenv.Server{Server: srv, Echo: e, App: app, Store: store, DB: db}, logs
}

// keyOwner signs up and returns the browser and the account id.
func keyOwner(t *testing.T, srv *testenv.Server, email string) (*browser, string) {
	t.Helper()
	b := newBrowser(t, srv)
	if res := b.signup(email, "correct horse battery"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign up %s: %d", email, res.StatusCode)
	}
	u, err := srv.Store.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return b, u.AccountID
}

var secretPattern = regexp.MustCompile(`sk-tt-[0-9A-Za-z]{43}`)

// createKey submits the create form of /keys and returns the response,
// the page and the new key's secret.
func (b *browser) createKey(vals url.Values) (*http.Response, string, string) {
	b.t.Helper()
	_, page := b.get("/keys")
	vals.Set("_csrf", testenv.FieldValue(b.t, page, "_csrf"))
	vals.Set("nonce", testenv.FieldValue(b.t, page, "nonce"))
	res, err := b.c.PostForm(b.srv.URL+"/keys", vals)
	if err != nil {
		b.t.Fatal(err)
	}
	body := testenv.Body(b.t, res)
	return res, body, secretPattern.FindString(body)
}

// keyEvents returns every change recorded to the keys of an account: the
// audit log's entries about keys.
func keyEvents(t *testing.T, srv *testenv.Server, accountID string) []models.AuditEntry {
	t.Helper()
	evs, _, err := srv.Store.AuditLog(context.Background(), accountID, models.AuditFilter{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []models.AuditEntry
	for _, e := range evs {
		if strings.HasPrefix(e.Target, "key_") {
			out = append(out, e)
		}
	}
	return out
}

func onlyKey(t *testing.T, srv *testenv.Server, accountID string) *models.APIKey {
	t.Helper()
	keys, err := srv.Store.APIKeysOf(context.Background(), accountID)
	if err != nil || len(keys) != 1 {
		t.Fatalf("%d keys (%v), want 1", len(keys), err)
	}
	return &keys[0]
}

func TestKeysPageEmptyStateAndForm(t *testing.T) {
	srv := testenv.NewServer(t)
	b, _ := keyOwner(t, srv, "ada@example.com")
	res, page := b.get("/keys")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /keys: %d", res.StatusCode)
	}
	doc := testenv.Doc(t, page)
	if !strings.Contains(doc.Find(".empty").Text(), "No API keys yet") {
		t.Error("no empty state")
	}
	form := doc.Find(`form[action="/keys"]`)
	for _, name := range []string{"_csrf", "nonce", "name", "monthly_limit_usd", "rpm", "expires_at"} {
		if form.Find(`input[name="`+name+`"]`).Length() != 1 {
			t.Errorf("create form lacks %s", name)
		}
	}
	if form.Find(`textarea[name="allowed_ips"]`).Length() != 1 {
		t.Error("create form lacks allowed_ips")
	}
	var ids []string
	form.Find(`input[name="models"]`).Each(func(_ int, s *goquery.Selection) { ids = append(ids, s.AttrOr("value", "")) })
	catalogue, err := srv.Store.Models(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range catalogue {
		want = append(want, m.ID)
	}
	if !slices.Equal(ids, want) || len(want) < 2 {
		t.Errorf("model choices %v, want the catalogue's, in its order: %v", ids, want)
	}
	if v, _ := form.Find(`input[name="rpm"]`).Attr("value"); v != "60" {
		t.Errorf("default rpm %q, want 60", v)
	}
}

// The secret is in the creation answer and nowhere else, ever: not on any
// later page, not in a header or cookie, not in the database, not in the log.
func TestKeySecretIsShownOnceAndNeverAgain(t *testing.T) {
	srv, logs := newLoggedServer(t)
	b, acct := keyOwner(t, srv, "ada@example.com")

	res, page, secret := b.createKey(url.Values{"name": {"production"}})
	if res.StatusCode != http.StatusCreated || secret == "" {
		t.Fatalf("create: %d, secret found: %v", res.StatusCode, secret != "")
	}
	k := onlyKey(t, srv, acct)
	doc := testenv.Doc(t, page)
	if got := doc.Find(`[data-testid=new-secret]`).Text(); got != secret {
		t.Fatalf("secret block shows %q", got)
	}
	if v, _ := doc.Find(`[data-copy]`).First().Attr("data-copy"); v != secret {
		t.Error("no copy button for the secret")
	}
	if !strings.Contains(page, "It will not be shown again") {
		t.Error("no warning that the secret is shown once")
	}
	if v, _ := doc.Find(`[data-replace-url]`).Attr("data-replace-url"); v != "/keys/"+k.ID {
		t.Errorf("data-replace-url = %q", v)
	}
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Error("the secret page may be cached")
	}
	if k.Prefix != secret[:10] || k.Last4 != secret[len(secret)-4:] || !strings.Contains(page, k.Display()) {
		t.Errorf("display %q does not match the secret", k.Display())
	}
	if got, err := srv.Store.APIKeyBySecret(context.Background(), secret); err != nil || got.ID != k.ID {
		t.Fatalf("the shown secret does not work: %v", err)
	}

	// Everything a person can do afterwards.
	seen := map[string]string{}
	look := func(what string, res *http.Response, body string) {
		t.Helper()
		var hdr strings.Builder
		res.Header.Write(&hdr)
		seen[what] = hdr.String() + body
	}
	for _, p := range []string{"/keys", "/keys/" + k.ID, "/", "/account"} {
		res, body := b.get(p)
		look("GET "+p, res, body)
	}
	res, body := b.post("/keys/"+k.ID, "/keys/"+k.ID, url.Values{"name": {"renamed"}, "rpm": {"60"}})
	look("edit", res, body)
	res, body = b.post("/keys/"+k.ID, "/keys/"+k.ID, url.Values{"name": {""}, "rpm": {"60"}})
	look("edit with an error", res, body)
	res, body = b.post("/keys", "/keys", url.Values{"name": {""}})
	look("create with an error", res, body)
	for _, action := range []string{"disable", "enable", "revoke"} {
		res, body := b.post("/keys/"+k.ID, "/keys/"+k.ID+"/"+action, nil)
		look(action, res, body)
		res, body = b.get("/keys/" + k.ID)
		look("after "+action, res, body)
	}
	u, _ := url.Parse(srv.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		seen["cookie "+c.Name] = c.Value
	}
	seen["log"] = logs.String()
	keys, err := srv.Store.APIKeysOf(context.Background(), acct)
	if err != nil || len(keys) == 0 {
		t.Fatalf("%d keys (%v)", len(keys), err)
	}
	seen["stored keys"] = fmt.Sprintf("%+v", keys)
	seen["stored key events"] = fmt.Sprintf("%+v", keyEvents(t, srv, acct))
	for what, text := range seen {
		if strings.Contains(text, secret) || strings.Contains(text, secret[10:30]) {
			t.Errorf("the secret appears in %s", what)
		}
	}
	if !strings.Contains(logs.String(), `"path":"/keys"`) {
		t.Error("the log kept nothing: the check above proves nothing")
	}
}

// Submitting the create form twice (a reload of the answer) makes one key
// and does not show a secret again.
func TestCreateKeyResubmitMakesOneKey(t *testing.T) {
	srv := testenv.NewServer(t)
	b, acct := keyOwner(t, srv, "ada@example.com")
	_, page := b.get("/keys")
	vals := url.Values{"name": {"production"}, "_csrf": {testenv.FieldValue(t, page, "_csrf")}, "nonce": {testenv.FieldValue(t, page, "nonce")}}
	res, err := b.c.PostForm(srv.URL+"/keys", vals)
	if err != nil {
		t.Fatal(err)
	}
	first := testenv.Body(t, res)
	secret := secretPattern.FindString(first)
	k := onlyKey(t, srv, acct)

	res, err = b.c.PostForm(srv.URL+"/keys", vals)
	if err != nil {
		t.Fatal(err)
	}
	body := testenv.Body(t, res)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/keys/"+k.ID || secretPattern.MatchString(body) {
		t.Fatalf("resubmit: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	onlyKey(t, srv, acct)
	_, page = b.get("/keys/" + k.ID)
	if strings.Contains(page, secret) || !strings.Contains(page, "its secret was shown once") {
		t.Fatal("the key page after a resubmit shows the secret, or does not explain")
	}
	// A new visit to the page gets a new form.
	if _, _, s := b.createKey(url.Values{"name": {"second"}}); s == "" || s == secret {
		t.Fatal("a second key from a fresh form was not created")
	}
}

func TestCreateKeyWithEverySetting(t *testing.T) {
	srv := testenv.NewServer(t)
	b, acct := keyOwner(t, srv, "ada@example.com")
	expiry := time.Now().UTC().AddDate(0, 2, 0).Format("2006-01-02")
	res, _, _ := b.createKey(url.Values{
		"name": {"  batch <job>  "}, "models": {"tt-embed-1", "tt-chat-small"}, "allowed_ips": {"203.0.113.7,\n10.0.0.0/8\n203.0.113.7"},
		"monthly_limit_usd": {"$12.50"}, "rpm": {"600"}, "expires_at": {expiry},
	})
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d", res.StatusCode)
	}
	k := onlyKey(t, srv, acct)
	if k.Name != "batch <job>" || k.Models != "tt-chat-small,tt-embed-1" || k.AllowedIPs != "203.0.113.7/32\n10.0.0.0/8" ||
		*k.MonthlyLimitMicros != 12_500_000 || k.RPM != 600 || k.ExpiresAt.Format("2006-01-02") != expiry || k.Status != "active" {
		t.Fatalf("stored %+v", k)
	}
	_, page := b.get("/keys")
	row := testenv.Doc(t, page).Find(`tr[data-key-id="` + k.ID + `"]`)
	for _, want := range []string{"batch <job>", k.Display(), "tt-chat-small, tt-embed-1", "203.0.113.7/32 and 1 more", "$0.00 of $12.50", "600 requests per minute", "Active", "Never"} {
		if !strings.Contains(row.Text(), want) {
			t.Errorf("list row %q lacks %q", row.Text(), want)
		}
	}
	if strings.Contains(page, "<job>") {
		t.Error("the name was not escaped")
	}
	if row.Find("meter").Length() != 1 {
		t.Error("no month-to-date bar")
	}
}

func TestCreateKeyBadInputIsAFieldMessage(t *testing.T) {
	srv := testenv.NewServer(t)
	b, acct := keyOwner(t, srv, "ada@example.com")
	cases := []struct {
		name, field, value, message string
	}{
		{"no name", "name", "", "Give the key a name"},
		{"long name", "name", strings.Repeat("n", 5000), "at most 100 characters"},
		{"unknown model", "models", "gpt-4", `"gpt-4" is not a model in the catalogue`},
		{"junk ip", "allowed_ips", "10.0.0.1, my-server", `"my-server" is not an IP address`},
		{"host bits", "allowed_ips", "10.0.0.5/8", "did you mean 10.0.0.0/8"},
		{"too many ips", "allowed_ips", manyIPs(101), "At most 100"},
		{"huge ip entry", "allowed_ips", strings.Repeat("9", 100000), "is not an IP address"},
		{"zero limit", "monthly_limit_usd", "0", "above $0"},
		{"negative limit", "monthly_limit_usd", "-1", "cannot be negative"},
		{"exponent", "monthly_limit_usd", "1e3", "plain digits"},
		{"words", "monthly_limit_usd", "abc", "Enter an amount in dollars"},
		{"huge limit", "monthly_limit_usd", "99999999999999999999", "The largest limit"},
		{"rpm over the account maximum", "rpm", "601", "from 1 to 600, your account's maximum"},
		{"rpm zero", "rpm", "0", "from 1 to 600"},
		{"rpm words", "rpm", "lots", "whole number"},
		{"expiry past", "expires_at", "2020-01-01", "in the future"},
		{"expiry junk", "expires_at", "tomorrow", "YYYY-MM-DD"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vals := url.Values{"name": {"valid name"}}
			vals.Set(tc.field, tc.value)
			res, page, _ := b.createKey(vals)
			if res.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422", res.StatusCode)
			}
			doc := testenv.Doc(t, page)
			msg := doc.Find(`.field-error[data-field="` + tc.field + `"]`).Text()
			if !strings.Contains(msg, tc.message) {
				t.Fatalf("message beside %s = %q, want %q", tc.field, msg, tc.message)
			}
			if doc.Find(".field-error").Length() != 1 {
				t.Errorf("%d messages, want only the one", doc.Find(".field-error").Length())
			}
			// What was typed is still there to fix.
			if tc.field == "allowed_ips" && len(tc.value) < 1000 && doc.Find(`textarea[name="allowed_ips"]`).Text() != tc.value {
				t.Error("the typed IPs were lost")
			}
			if tc.field == "monthly_limit_usd" && testenv.FieldValue(t, page, "monthly_limit_usd") != tc.value {
				t.Error("the typed limit was lost")
			}
			if testenv.FieldValue(t, page, "nonce") == "" {
				t.Error("the form lost its one-time token")
			}
		})
	}
	if keys, _ := srv.Store.APIKeysOf(context.Background(), acct); len(keys) != 0 {
		t.Fatalf("bad input created %d keys", len(keys))
	}
	if n := len(keyEvents(t, srv, acct)); n != 0 {
		t.Fatalf("bad input recorded %d events", n)
	}
}

func manyIPs(n int) string {
	var ips []string
	for i := range n {
		ips = append(ips, "10.0."+strconv.Itoa(i/256)+"."+strconv.Itoa(i%256))
	}
	return strings.Join(ips, "\n")
}

func TestEditKeyRecordsEvents(t *testing.T) {
	srv := testenv.NewServer(t)
	b, acct := keyOwner(t, srv, "ada@example.com")
	b.createKey(url.Values{"name": {"production"}})
	k := onlyKey(t, srv, acct)
	path := "/keys/" + k.ID

	_, page := b.get(path)
	doc := testenv.Doc(t, page)
	if v, _ := doc.Find(`form[action="` + path + `"] input[name="name"]`).Attr("value"); v != "production" {
		t.Fatalf("edit form name %q", v)
	}
	res, _ := b.post(path, path, url.Values{"name": {"prod eu"}, "models": {"tt-chat-large,tt-chat-small"},
		"allowed_ips": {"2001:db8::/32"}, "monthly_limit_usd": {"40"}, "rpm": {"120"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != path {
		t.Fatalf("edit: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	_, page = b.get(path)
	if !strings.Contains(page, "Saved 5 changes.") {
		t.Error("no confirmation")
	}
	got := onlyKey(t, srv, acct)
	if got.Name != "prod eu" || got.Models != "tt-chat-small,tt-chat-large" || got.AllowedIPs != "2001:db8::/32" ||
		*got.MonthlyLimitMicros != 40_000_000 || got.RPM != 120 {
		t.Fatalf("stored %+v", got)
	}
	events := map[string]string{}
	testenv.Doc(t, page).Find(`[data-testid=key-events] tbody tr`).Each(func(_ int, s *goquery.Selection) {
		cells := s.Find("td").Map(func(_ int, c *goquery.Selection) string { return strings.TrimSpace(c.Text()) })
		if cells[1] != "ada@example.com" {
			t.Errorf("event by %q", cells[1])
		}
		events[cells[2]] = cells[3] + " → " + cells[4]
	})
	want := map[string]string{
		"Created":                          " → " + k.Display(),
		"Name":                             "production → prod eu",
		"Models":                           "all models → tt-chat-small, tt-chat-large",
		"Source IPs":                       "any source → 2001:db8::/32",
		"Monthly limit":                    "no limit → $40.00",
		"Rate limit (requests per minute)": "60 → 120",
	}
	for what, w := range want {
		if events[what] != w {
			t.Errorf("event %s = %q, want %q", what, events[what], w)
		}
	}
	if len(events) != len(want) {
		t.Errorf("events %v", events)
	}

	// Saving the same values changes nothing and records nothing.
	n := len(keyEvents(t, srv, acct))
	b.post(path, path, url.Values{"name": {"prod eu"}, "models": {"tt-chat-small", "tt-chat-large"},
		"allowed_ips": {"2001:db8::/32"}, "monthly_limit_usd": {"40.00"}, "rpm": {"120"}})
	if len(keyEvents(t, srv, acct)) != n {
		t.Error("an unchanged save recorded events")
	}
}

func TestEditKeyBadInputChangesNothing(t *testing.T) {
	srv := testenv.NewServer(t)
	b, acct := keyOwner(t, srv, "ada@example.com")
	b.createKey(url.Values{"name": {"production"}, "allowed_ips": {"203.0.113.7"}, "monthly_limit_usd": {"10"}})
	before := onlyKey(t, srv, acct)
	events := len(keyEvents(t, srv, acct))
	path := "/keys/" + before.ID
	res, page := b.post(path, path, url.Values{"name": {"renamed"}, "allowed_ips": {"203.0.113.7\n10.0.0.0/33"},
		"monthly_limit_usd": {"-5"}, "rpm": {"100000"}})
	if res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422", res.StatusCode)
	}
	doc := testenv.Doc(t, page)
	for field, want := range map[string]string{
		"allowed_ips":       `"10.0.0.0/33" has an invalid prefix length`,
		"monthly_limit_usd": "cannot be negative",
		"rpm":               "from 1 to 600",
	} {
		if msg := doc.Find(`.field-error[data-field="` + field + `"]`).Text(); !strings.Contains(msg, want) {
			t.Errorf("%s: %q, want %q", field, msg, want)
		}
	}
	if v := testenv.FieldValue(t, page, "name"); v != "renamed" {
		t.Errorf("typed name lost: %q", v)
	}
	after := onlyKey(t, srv, acct)
	if after.Name != before.Name || after.AllowedIPs != before.AllowedIPs || *after.MonthlyLimitMicros != *before.MonthlyLimitMicros || after.RPM != before.RPM {
		t.Fatalf("bad input changed the key: %+v", after)
	}
	if len(keyEvents(t, srv, acct)) != events {
		t.Fatal("bad input recorded events")
	}
}

func TestKeyDisableEnableRevoke(t *testing.T) {
	srv := testenv.NewServer(t)
	b, acct := keyOwner(t, srv, "ada@example.com")
	b.createKey(url.Values{"name": {"production"}})
	k := onlyKey(t, srv, acct)
	path := "/keys/" + k.ID

	_, page := b.get(path)
	doc := testenv.Doc(t, page)
	for _, action := range []string{"disable", "revoke"} {
		form := doc.Find(`form[action="` + path + "/" + action + `"]`)
		if q, _ := form.Attr("data-confirm"); q == "" || form.Find(`input[name="_csrf"]`).Length() != 1 {
			t.Errorf("%s form: confirm %q, csrf %d", action, q, form.Find(`input[name="_csrf"]`).Length())
		}
	}
	steps := []struct {
		action, status, flash string
	}{
		{"disable", "disabled", "Key disabled"},
		{"disable", "disabled", "already disabled"},
		{"enable", "active", "Key enabled"},
		{"revoke", "revoked", "Key revoked"},
		{"enable", "revoked", "revoking is final"},
	}
	for _, s := range steps {
		res, _ := b.post(path, path+"/"+s.action, nil)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != path {
			t.Fatalf("%s: %d to %q", s.action, res.StatusCode, res.Header.Get("Location"))
		}
		_, page := b.get(path)
		if got := onlyKey(t, srv, acct).Status; got != s.status {
			t.Fatalf("after %s: status %q, want %q", s.action, got, s.status)
		}
		if !strings.Contains(testenv.Doc(t, page).Find(".flash").Text(), s.flash) {
			t.Errorf("after %s: flash %q, want %q", s.action, testenv.Doc(t, page).Find(".flash").Text(), s.flash)
		}
	}
	_, page = b.get(path)
	doc = testenv.Doc(t, page)
	if doc.Find(`form[action="`+path+`"]`).Length() != 0 || doc.Find(`form[action^="`+path+`/"]`).Length() != 0 {
		t.Error("a revoked key still offers forms")
	}
	if doc.Find(`[data-testid=key-state]`).Text() != "Revoked" {
		t.Error("no revoked badge")
	}
	// Editing a revoked key by hand is refused and changes nothing.
	res, err := b.c.PostForm(srv.URL+path, url.Values{"_csrf": {b.csrf("/keys")}, "name": {"back"}, "rpm": {"60"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusConflict || onlyKey(t, srv, acct).Name != "production" {
		t.Fatalf("editing a revoked key: %d", res.StatusCode)
	}
	statusEvents := 0
	for _, ev := range keyEvents(t, srv, acct) {
		if ev.Field == "status" {
			statusEvents++
		}
	}
	if statusEvents != 3 {
		t.Errorf("%d status events, want 3", statusEvents)
	}
}

func TestAnotherAccountsKeyIsNotFoundEverywhere(t *testing.T) {
	srv := testenv.NewServer(t)
	ada, acct := keyOwner(t, srv, "ada@example.com")
	ada.createKey(url.Values{"name": {"production"}})
	k := onlyKey(t, srv, acct)
	eve, eveAcct := keyOwner(t, srv, "eve@example.com")
	events := len(keyEvents(t, srv, acct)) + len(keyEvents(t, srv, eveAcct))

	path := "/keys/" + k.ID
	if res, page := eve.get(path); res.StatusCode != http.StatusNotFound || strings.Contains(page, "production") {
		t.Errorf("GET: %d", res.StatusCode)
	}
	posts := map[string]url.Values{
		path:              {"name": {"stolen"}, "rpm": {"60"}},
		path + "#invalid": {"name": {""}, "rpm": {"0"}}, // bad input must not reveal the key exists
		path + "/disable": nil, path + "/enable": nil, path + "/revoke": nil,
	}
	for p, vals := range posts {
		target, _, _ := strings.Cut(p, "#")
		if res, _ := eve.post("/keys", target, vals); res.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s: %d, want 404", p, res.StatusCode)
		}
	}
	if res, _ := eve.get("/keys/key_does_not_exist"); res.StatusCode != http.StatusNotFound {
		t.Errorf("missing key: %d", res.StatusCode)
	}
	if _, page := eve.get("/keys"); strings.Contains(page, k.ID) || strings.Contains(page, k.Display()) {
		t.Error("eve's list shows ada's key")
	}
	if got := onlyKey(t, srv, acct); got.Name != "production" || got.Status != "active" ||
		len(keyEvents(t, srv, acct))+len(keyEvents(t, srv, eveAcct)) != events {
		t.Fatal("eve changed ada's key")
	}
}

func TestKeyFormsNeedCSRF(t *testing.T) {
	srv := testenv.NewServer(t)
	b, acct := keyOwner(t, srv, "ada@example.com")
	b.createKey(url.Values{"name": {"production"}})
	k := onlyKey(t, srv, acct)
	for _, p := range []string{"/keys", "/keys/" + k.ID, "/keys/" + k.ID + "/revoke"} {
		b.csrf("/keys")
		res, err := b.c.PostForm(srv.URL+p, url.Values{"name": {"forged"}, "rpm": {"60"}})
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s without a token: %d, want 403", p, res.StatusCode)
		}
	}
	if got := onlyKey(t, srv, acct); got.Name != "production" || got.Status != "active" {
		t.Fatal("a forged form changed the key")
	}
}

func TestKeyPageShowsMonthToDateAndProjection(t *testing.T) {
	srv := testenv.NewServer(t)
	b, acct := keyOwner(t, srv, "ada@example.com")
	b.createKey(url.Values{"name": {"production"}, "monthly_limit_usd": {"1000"}})
	k := onlyKey(t, srv, acct)
	now := time.Now().UTC()
	// Whatever the day of the month, spend at this level reaches the
	// limit before the month resets: calls charged $990 so far, and one
	// still running holds $0.001536.
	ctx := context.Background()
	if _, err := srv.Store.Credit(ctx, acct, 1000*models.MicrosPerUSD, models.LedgerAdjustment, "test funds", models.LedgerRef{}); err != nil {
		t.Fatal(err)
	}
	call := func(hold int64) (*models.Hold, *models.Request) {
		t.Helper()
		r := &models.Request{ID: srv.Store.NewRequestID(), AccountID: &acct, KeyID: &k.ID, Method: "POST",
			Path: "/v1/chat/completions", Model: "tt-chat-large", Status: 200, CreatedAt: now}
		h, err := srv.Store.StartCall(ctx, r, k.ID, k.MonthlyLimitMicros, hold, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return h, r
	}
	spent := int64(990_000_000)
	if h, r := call(spent); srv.Store.FinishCall(ctx, h, r, spent) != nil {
		t.Fatal("the $990 call was not charged")
	}
	call(1_536)
	_, page := b.get("/keys/" + k.ID)
	usage := testenv.Doc(t, page).Find(`[data-testid=key-usage]`)
	reset := time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC).Format("2 Jan 2006")
	// One sentence, one precision: the sub-cent hold shows, and so every
	// amount beside it carries its six decimals.
	for _, want := range []string{"Spent $990.000000", "$0.001536 held", "$990.001536 of its $1,000.000000 monthly limit", "resets on " + reset} {
		if !strings.Contains(strings.Join(strings.Fields(usage.Text()), " "), want) {
			t.Errorf("usage %q lacks %q", usage.Text(), want)
		}
	}
	if v, _ := usage.Find("meter").Attr("value"); v != "990001536" {
		t.Errorf("meter value %q", v)
	}
	if p := usage.Find(`[data-testid=key-projection]`).Text(); !strings.HasPrefix(p, "At this pace, reached on ") && !strings.HasPrefix(p, "The limit is reached") {
		t.Errorf("projection %q", p)
	}
	_, list := b.get("/keys")
	if !strings.Contains(list, "$990.001536 of $1,000.000000") {
		t.Error("the list lacks the month to date")
	}
}
