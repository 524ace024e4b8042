package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// browser is a cookie-keeping client of one test server.
type browser struct {
	t   *testing.T
	srv *testenv.Server
	c   *http.Client
}

func newBrowser(t *testing.T, srv *testenv.Server) *browser {
	return &browser{t: t, srv: srv, c: srv.Client()}
}

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	res, err := b.c.Get(b.srv.URL + path)
	if err != nil {
		b.t.Fatal(err)
	}
	return res, testenv.Body(b.t, res)
}

// csrf loads a page and returns its form token.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	_, page := b.get(path)
	tok := testenv.FieldValue(b.t, page, "_csrf")
	if tok == "" {
		b.t.Fatalf("no _csrf field on %s", path)
	}
	return tok
}

// post submits a form from formPath's page to path, with its CSRF token.
func (b *browser) post(formPath, path string, vals url.Values) (*http.Response, string) {
	b.t.Helper()
	if vals == nil {
		vals = url.Values{}
	}
	vals.Set("_csrf", b.csrf(formPath))
	res, err := b.c.PostForm(b.srv.URL+path, vals)
	if err != nil {
		b.t.Fatal(err)
	}
	return res, testenv.Body(b.t, res)
}

func (b *browser) signup(email, password string) *http.Response {
	b.t.Helper()
	res, _ := b.post("/signup", "/signup", url.Values{"email": {email}, "password": {password}})
	return res
}

func (b *browser) login(email, password string) (*http.Response, string) {
	b.t.Helper()
	return b.post("/login", "/login", url.Values{"email": {email}, "password": {password}})
}

func (b *browser) sessionCookie() string {
	u, _ := url.Parse(b.srv.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "tt_session" {
			return c.Value
		}
	}
	return ""
}

// signedIn reports whether GET / shows the console rather than a redirect.
func (b *browser) signedIn() bool {
	b.t.Helper()
	res, _ := b.get("/")
	return res.StatusCode == http.StatusOK
}

// registered returns how many of the emails have an account.
func registered(t *testing.T, srv *testenv.Server, emails ...string) int {
	t.Helper()
	n := 0
	for _, email := range emails {
		_, err := srv.Store.UserByEmail(context.Background(), email)
		switch {
		case err == nil:
			n++
		case models.ErrorCode(err) != models.ENOTFOUND:
			t.Fatal(err)
		}
	}
	return n
}

// sessionsOf returns the sessions of the user with an email.
func sessionsOf(t *testing.T, srv *testenv.Server, email string) []models.Session {
	t.Helper()
	ctx := context.Background()
	u, err := srv.Store.UserByEmail(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := srv.Store.SessionsOf(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return sessions
}

func TestSignupCreatesAccountUserAndWallet(t *testing.T) {
	srv := testenv.NewServer(t)
	b := newBrowser(t, srv)
	res := b.signup("  Ada@Example.com ", "correct horse battery")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		t.Fatalf("signup: got %d to %q, want 303 to /", res.StatusCode, res.Header.Get("Location"))
	}
	if !b.signedIn() {
		t.Fatal("not signed in after sign-up")
	}
	u, err := srv.Store.UserByEmail(context.Background(), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	w, err := srv.Store.WalletOf(context.Background(), u.AccountID)
	if err != nil {
		t.Fatalf("wallet: %v", err)
	}
	if w.BalanceMicros != 0 || w.HeldMicros != 0 {
		t.Fatalf("new wallet = %+v, want empty", w)
	}
	if strings.Contains(u.PasswordHash, "correct horse") || !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
		t.Fatalf("password stored as %q, want an argon2id hash", u.PasswordHash)
	}
	_, page := b.get("/")
	for _, want := range []string{"Overview", "Requests", "API keys", "Billing", "ada@example.com", "$0.00"} {
		if !strings.Contains(page, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
}

func TestSignupRejectsBadInputAndWritesNothing(t *testing.T) {
	srv := testenv.NewServer(t)
	newBrowser(t, srv).signup("taken@example.com", "long enough password")
	taken, err := srv.Store.UserByEmail(context.Background(), "taken@example.com")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, email, password, field, message string
		status                                int
	}{
		{"empty email", "", "long enough password", "email", "Enter your email address.", 422},
		{"not an email", "ada.example.com", "long enough password", "email", "Enter a valid email address", 422},
		{"no domain dot", "ada@localhost", "long enough password", "email", "Enter a valid email address", 422},
		{"display name", "Ada <ada@example.com>", "long enough password", "email", "Enter a valid email address", 422},
		{"email too long", strings.Repeat("a", 250) + "@example.com", "long enough password", "email", "at most 254", 422},
		{"short password", "ada@example.com", "123456789", "password", "at least 10 characters", 422},
		{"huge password", "ada@example.com", strings.Repeat("p", 300), "password", "at most 256", 422},
		{"duplicate", "TAKEN@example.com", "long enough password", "email", "already exists", 409},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser(t, srv)
			res, page := b.post("/signup", "/signup", url.Values{"email": {tc.email}, "password": {tc.password}})
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			doc := testenv.Doc(t, page)
			msg := doc.Find(`.field-error[data-field="` + tc.field + `"]`).Text()
			if !strings.Contains(msg, tc.message) {
				t.Fatalf("message beside %s = %q, want it to contain %q", tc.field, msg, tc.message)
			}
			if got, _ := doc.Find(`input[name="password"]`).Attr("value"); got != "" {
				t.Fatal("the password was sent back in the page")
			}
			if b.signedIn() {
				t.Fatal("signed in after a failed sign-up")
			}
			u, err := srv.Store.UserByEmail(context.Background(), tc.email)
			if tc.status == http.StatusConflict {
				if err != nil || u.ID != taken.ID || u.AccountID != taken.AccountID {
					t.Fatalf("the taken email's account changed: %+v %v", u, err)
				}
			} else if models.ErrorCode(err) != models.ENOTFOUND {
				t.Fatalf("a failed sign-up made an account: %+v %v", u, err)
			}
		})
	}
}

func TestLoginAndWrongCredentials(t *testing.T) {
	srv := testenv.NewServer(t)
	newBrowser(t, srv).signup("ada@example.com", "correct horse battery")

	b := newBrowser(t, srv)
	res, wrongPw := b.login("ada@example.com", "wrong password!!")
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d, want 401", res.StatusCode)
	}
	res, noUser := b.login("nobody@example.com", "correct horse battery")
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unknown email: %d, want 401", res.StatusCode)
	}
	msg := func(page string) string { return testenv.Doc(t, page).Find(".form-error").Text() }
	if msg(wrongPw) != "Incorrect email or password." || msg(noUser) != msg(wrongPw) {
		t.Fatalf("messages differ or are wrong: %q vs %q", msg(wrongPw), msg(noUser))
	}
	if b.signedIn() {
		t.Fatal("signed in after wrong credentials")
	}

	res, _ = b.login("ADA@example.com", "correct horse battery")
	if res.StatusCode != http.StatusSeeOther || !b.signedIn() {
		t.Fatalf("login: %d and not signed in", res.StatusCode)
	}
}

func TestLoginGoesBackToThePageAskedFor(t *testing.T) {
	srv := testenv.NewServer(t)
	newBrowser(t, srv).signup("ada@example.com", "correct horse battery")
	b := newBrowser(t, srv)
	res, _ := b.get("/keys")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login?next=%2Fkeys" {
		t.Fatalf("signed-out /keys: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	for next, want := range map[string]string{"/keys": "/keys", "https://evil.example/": "/", "//evil.example": "/"} {
		b := newBrowser(t, srv)
		res, _ := b.post("/login?next="+url.QueryEscape(next), "/login", url.Values{
			"email": {"ada@example.com"}, "password": {"correct horse battery"}, "next": {next}})
		if got := res.Header.Get("Location"); got != want {
			t.Errorf("next=%q: redirected to %q, want %q", next, got, want)
		}
	}
}

// TestLoginNextStaysOnThisSite: whatever next says, the browser is sent
// to a path of this site.
func TestLoginNextStaysOnThisSite(t *testing.T) {
	srv := testenv.NewServer(t)
	if _, err := srv.Store.CreateAccount(context.Background(), "ada@example.com", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		// Local paths are kept.
		"/keys": "/keys",
		"/requests?status=4xx&model=tt-chat-small": "/requests?status=4xx&model=tt-chat-small",
		"/requests?q=a%20b":                        "/requests?q=a%20b",
		"/billing#ledger":                          "/billing#ledger",
		"/requests/req_01J0000000000000000000000":  "/requests/req_01J0000000000000000000000",
		// Anything a browser may read as another site, or that is not a path.
		"":                              "/",
		"keys":                          "/",
		"/\t/evil.example/x":            "/",
		"/%09/evil.example/x":           "/",
		"/\n/evil.example":              "/",
		"/\r\nSet-Cookie: x=1":          "/",
		"/%0d%0aSet-Cookie:%20x=1":      "/",
		"/ /evil.example":               "/",
		" /keys":                        "/",
		"/keys ":                        "/",
		"/\x7f/evil.example":            "/",
		"/\u00a0/evil.example":          "/",
		"/\u2028/evil.example":          "/",
		"/\ufeff/evil.example":          "/",
		"//evil.example":                "/",
		"///evil.example":               "/",
		"/\\evil.example":               "/",
		"/\\/evil.example":              "/",
		"\\/evil.example":               "/",
		"\\\\evil.example":              "/",
		"/%2F/evil.example":             "/",
		"/%2f%2fevil.example":           "/",
		"/%5Cevil.example":              "/",
		"/%5c%5cevil.example":           "/",
		"/%252F%252Fevil.example":       "/",
		"/%25252F%25252Fevil.example":   "/",
		"/.//evil.example":              "/",
		"/x/..//evil.example":           "/",
		"https://evil.example/":         "/",
		"https:evil.example":            "/",
		"http:/evil.example":            "/",
		"HTTPS://evil.example":          "/",
		"javascript:alert(1)":           "/",
		"data:text/html,<script>":       "/",
		"/@evil.example":                "/@evil.example",
		"/keys?next=//evil.example":     "/keys?next=//evil.example",
		"/%":                            "/",
		"/" + strings.Repeat("a", 5000): "/",
	}
	b := newBrowser(t, srv)
	for next, want := range cases {
		_, page := b.get("/login?next=" + url.QueryEscape(next))
		if got := testenv.FieldValue(t, page, "next"); got != want {
			t.Errorf("GET /login?next=%.80q: the form goes on to %.80q, want %q", next, got, want)
		}
	}
	// A NUL byte is in no address of the site: the page says so, and
	// offers no way on.
	res, page := b.get("/login?next=" + url.QueryEscape("/\x00/evil.example"))
	if res.StatusCode != http.StatusBadRequest || strings.Contains(page, "evil.example") {
		t.Errorf("GET /login?next=/%%00/evil.example: %d, want 400 without the address", res.StatusCode)
	}
	// And the redirect after login, for the values of the report.
	for _, next := range []string{"/\t/evil.example/x", "/%09/evil.example/x", "/\\evil.example", "/keys"} {
		b := newBrowser(t, srv)
		res, _ := b.post("/login", "/login", url.Values{
			"email": {"ada@example.com"}, "password": {"correct horse battery"}, "next": {next}})
		if got := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || got != cases[next] {
			t.Errorf("login with next=%q: %d to %q, want 303 to %q", next, res.StatusCode, got, cases[next])
		}
	}
}

func TestLogoutMakesTheOldCookieUseless(t *testing.T) {
	srv := testenv.NewServer(t)
	b := newBrowser(t, srv)
	b.signup("ada@example.com", "correct horse battery")
	stolen := b.sessionCookie()
	if stolen == "" {
		t.Fatal("no session cookie")
	}
	res, _ := b.post("/", "/logout", nil)
	if res.StatusCode != http.StatusSeeOther || b.signedIn() {
		t.Fatal("still signed in after logout")
	}
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	req.AddCookie(&http.Cookie{Name: "tt_session", Value: stolen})
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("old cookie after logout: %d, want a redirect to log in", res.StatusCode)
	}
	if n := len(sessionsOf(t, srv, "ada@example.com")); n != 0 {
		t.Fatalf("%d sessions left after logout", n)
	}
}

func TestSessionIDChangesAtLogin(t *testing.T) {
	srv := testenv.NewServer(t)
	b := newBrowser(t, srv)
	b.signup("ada@example.com", "correct horse battery")
	before := b.sessionCookie()
	sessions := sessionsOf(t, srv, "ada@example.com")
	if len(sessions) != 1 {
		t.Fatalf("%d sessions after sign-up, want 1", len(sessions))
	}
	tokenBefore := sessions[0].TokenHash

	// Logging in again from a signed-in browser still gets a new id.
	b.post("/", "/login", url.Values{"email": {"ada@example.com"}, "password": {"correct horse battery"}})
	after := b.sessionCookie()
	sessions = sessionsOf(t, srv, "ada@example.com")
	if before == after || len(sessions) != 1 || sessions[0].TokenHash == tokenBefore {
		t.Fatalf("session not rotated at login: cookie changed=%v, sessions=%d", before != after, len(sessions))
	}
	if !b.signedIn() {
		t.Fatal("not signed in after login")
	}
}

func TestSessionCookieFlags(t *testing.T) {
	srv := testenv.NewServer(t)
	b := newBrowser(t, srv)
	vals := url.Values{"email": {"ada@example.com"}, "password": {"correct horse battery"}, "_csrf": {b.csrf("/signup")}}
	res, err := b.c.PostForm(srv.URL+"/signup", vals)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var found bool
	for _, c := range res.Cookies() {
		if c.Name != "tt_session" {
			continue
		}
		found = true
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.MaxAge <= 0 {
			t.Fatalf("session cookie flags: %+v", c)
		}
		var vals map[any]any
		codecs := srv.App.Cookies.(*sessions.CookieStore).Codecs
		if err := securecookie.DecodeMulti("tt_session", c.Value, &vals, codecs...); err != nil {
			t.Fatal(err)
		}
		if tok, _ := vals["t"].(string); len(vals) != 1 || len(tok) != 64 {
			t.Fatalf("session cookie carries %v, want only a session token", vals)
		}
	}
	if !found {
		t.Fatal("no session cookie set at sign-up")
	}
}

func TestChangePasswordEndsOtherSessions(t *testing.T) {
	srv := testenv.NewServer(t)
	laptop := newBrowser(t, srv)
	laptop.signup("ada@example.com", "correct horse battery")
	phone := newBrowser(t, srv)
	phone.login("ada@example.com", "correct horse battery")

	res, page := laptop.post("/account", "/account/password", url.Values{
		"current_password": {"not my password"}, "new_password": {"short"}})
	if res.StatusCode != http.StatusUnprocessableEntity ||
		!strings.Contains(page, "That is not your current password.") || !strings.Contains(page, "at least 10 characters") {
		t.Fatalf("bad change: %d", res.StatusCode)
	}
	res, _ = laptop.post("/account", "/account/password", url.Values{
		"current_password": {"correct horse battery"}, "new_password": {"a brand new passphrase"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("change password: %d", res.StatusCode)
	}
	if !laptop.signedIn() {
		t.Fatal("the session that changed the password was ended")
	}
	if phone.signedIn() {
		t.Fatal("another session survived a password change")
	}
	if res, _ := newBrowser(t, srv).login("ada@example.com", "correct horse battery"); res.StatusCode != http.StatusUnauthorized {
		t.Fatal("old password still works")
	}
	if res, _ := newBrowser(t, srv).login("ada@example.com", "a brand new passphrase"); res.StatusCode != http.StatusSeeOther {
		t.Fatal("new password does not work")
	}
}

func TestCSRF(t *testing.T) {
	srv := testenv.NewServer(t)
	b := newBrowser(t, srv)
	b.signup("ada@example.com", "correct horse battery")

	cases := []struct {
		name   string
		form   url.Values
		header map[string]string
	}{
		{"missing token", url.Values{}, nil},
		{"wrong token", url.Values{"_csrf": {"forged"}}, nil},
		{"from another site", url.Values{}, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b.csrf("/") // the browser has a CSRF cookie
			req, _ := http.NewRequest("POST", srv.URL+"/logout", strings.NewReader(tc.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			res, err := b.c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := testenv.Body(t, res)
			if res.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403", res.StatusCode)
			}
			if !strings.Contains(body, res.Header.Get("X-TT-Request-ID")) {
				t.Fatal("the 403 page does not show its request id")
			}
			if !b.signedIn() {
				t.Fatal("the refused logout ended the session")
			}
		})
	}
	// Sign-up is a form too.
	res, err := srv.Client().PostForm(srv.URL+"/signup", url.Values{"email": {"eve@example.com"}, "password": {"long enough password"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden || registered(t, srv, "eve@example.com") != 0 {
		t.Fatalf("sign-up without token: %d", res.StatusCode)
	}
}

func TestLoginIsThrottled(t *testing.T) {
	srv := testenv.NewServer(t)
	newBrowser(t, srv).signup("ada@example.com", "correct horse battery")
	b := newBrowser(t, srv)
	var res *http.Response
	var page string
	for i := 0; i < 12; i++ {
		res, page = b.login("ada@example.com", "guess number "+string(rune('a'+i)))
		if res.StatusCode == http.StatusTooManyRequests {
			break
		}
	}
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("12 wrong passwords never throttled: last status %d", res.StatusCode)
	}
	if res.Header.Get("Retry-After") == "" || !strings.Contains(page, "Too many login attempts. Wait") {
		t.Fatalf("429 without Retry-After or a message saying when to retry")
	}
	// Even the right password waits: that is the point.
	if res, _ := b.login("ada@example.com", "correct horse battery"); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("right password during throttle: %d", res.StatusCode)
	}
}

func TestEveryResponseHasARequestID(t *testing.T) {
	srv := testenv.NewServer(t)
	srv.Echo.GET("/test-panic", func(echo.Context) error { panic("boom") })
	paths := []struct{ method, path string }{
		{"GET", "/"}, {"GET", "/login"}, {"GET", "/signup"}, {"GET", "/nope"}, {"GET", "/v1/nope"},
		{"POST", "/v1/chat/completions/x"}, {"GET", "/static/app.css"}, {"GET", "/static/missing.css"},
		{"GET", "/healthz"}, {"GET", "/readyz"}, {"GET", "/metrics"}, {"POST", "/logout"}, {"GET", "/test-panic"},
	}
	seen := map[string]bool{}
	for _, p := range paths {
		req, _ := http.NewRequest(p.method, srv.URL+p.path, nil)
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := testenv.Body(t, res)
		id := res.Header.Get("X-TT-Request-ID")
		if !strings.HasPrefix(id, "req_") || len(id) != 30 || seen[id] {
			t.Errorf("%s %s: request id %q (want a new req_<ULID>)", p.method, p.path, id)
		}
		seen[id] = true
		if p.path == "/test-panic" {
			if res.StatusCode != 500 || !strings.Contains(body, id) {
				t.Errorf("panic: status %d, request id shown: %v", res.StatusCode, strings.Contains(body, id))
			}
		}
	}
}

func TestAPINotFoundHasTheExactErrorShape(t *testing.T) {
	srv := testenv.NewServer(t)
	cases := []struct{ method, path, hint string }{
		{"GET", "/v1/nope", "No route for GET /v1/nope"},
		{"POST", "/v1/v1/chat/completions", "one /v1 too many. Use " + srv.URL + "/v1/chat/completions"},
		{"POST", "/chat/completions", "missing /v1. Use " + srv.URL + "/v1/chat/completions"},
		{"GET", "/v1", "No route for GET /v1"},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer sk-tt-whatever")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := testenv.Body(t, res)
		if res.StatusCode != 404 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("%s: %d %s", tc.path, res.StatusCode, res.Header.Get("Content-Type"))
		}
		var shape map[string]map[string]string
		if err := json.Unmarshal([]byte(body), &shape); err != nil {
			t.Fatalf("%s: body %q is not the error shape: %v", tc.path, body, err)
		}
		if len(shape) != 1 || len(shape["error"]) != 2 || shape["error"]["type"] != "not_found" {
			t.Fatalf("%s: body %s, want exactly {error:{type:not_found,message}}", tc.path, body)
		}
		if !strings.Contains(shape["error"]["message"], tc.hint) {
			t.Errorf("%s: message %q lacks %q", tc.path, shape["error"]["message"], tc.hint)
		}
	}
}

func TestSecurityHeadersAndOps(t *testing.T) {
	srv := testenv.NewServer(t)
	res, err := http.Get(srv.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for h, want := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "same-origin",
	} {
		if got := res.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP = %q", csp)
	}
	if res.Header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS sent over plain HTTP")
	}

	res, err = http.Get(srv.URL + "/readyz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", err, res.StatusCode)
	}
	res.Body.Close()
	res, err = http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics := testenv.Body(t, res)
	for _, want := range []string{`tt_http_requests_total{method="GET",route="/login",status="200"} 1`,
		`tt_http_requests_total{method="GET",route="/readyz",status="200"} 1`, "tt_http_request_duration_seconds_bucket"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	srv.DB.Close()
	res, err = http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz with the database closed: %d, want 503", res.StatusCode)
	}
}

func TestAdminCreatedAccountCanLogIn(t *testing.T) {
	srv := testenv.NewServer(t)
	if _, err := srv.Store.CreateAccount(context.Background(), "ops@example.com", "operator password"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Store.CreateAccount(context.Background(), "ops@example.com", "operator password"); models.ErrorCode(err) != models.ECONFLICT {
		t.Fatalf("duplicate: %v", err)
	}
	if res, _ := newBrowser(t, srv).login("ops@example.com", "operator password"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", res.StatusCode)
	}
}
