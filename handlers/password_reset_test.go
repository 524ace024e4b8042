package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"ttconsole/internal/smtptest"
	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// mailAbout returns the mails to an address whose subject has words in it.
func mailAbout(ms []smtptest.Message, words string) []smtptest.Message {
	var out []smtptest.Message
	for _, m := range ms {
		if strings.Contains(m.Subject, words) {
			out = append(out, m)
		}
	}
	return out
}

// pathOf is a link's path: what a test's browser asks its server for.
func pathOf(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Path
}

// fieldError is the message a page shows beside a form field.
func fieldError(t *testing.T, page, field string) string {
	t.Helper()
	return strings.TrimSpace(testenv.Doc(t, page).Find(`.field-error[data-field="` + field + `"]`).Text())
}

// TestPasswordResetEndToEnd: "Forgot your password?" on the login page
// leads to a mail with a link; the link sets a new password once, ends
// every session, and then, like an older link and an expired one, says
// it is no longer valid.
func TestPasswordResetEndToEnd(t *testing.T) {
	smtp := smtptest.Start(t, smtptest.Options{})
	srv := mailServer(t, smtp)
	ctx := context.Background()
	laptop := newBrowser(t, srv)
	laptop.signup("ada@example.com", "correct horse battery")
	phone := newBrowser(t, srv)
	if res, _ := phone.login("ada@example.com", "correct horse battery"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", res.StatusCode)
	}

	visitor := newBrowser(t, srv)
	_, login := visitor.get("/login")
	if href, _ := testenv.Doc(t, login).Find(`[data-testid=forgot-link]`).Attr("href"); href != "/password/forgot" {
		t.Fatalf("the login page's forgot link goes to %q", href)
	}
	for range 2 { // asked twice: only the link used counts, and it ends the other
		res, page := visitor.post("/password/forgot", "/password/forgot", url.Values{"email": {" Ada@Example.com "}})
		if res.StatusCode != http.StatusOK || !strings.Contains(page, "If an account uses") || !strings.Contains(page, "ada@example.com") {
			t.Fatalf("forgot: %d", res.StatusCode)
		}
	}
	var resets []smtptest.Message
	eventually(t, 10*time.Second, "two reset mails", func() bool {
		resets = mailAbout(smtp.Messages(), "Reset your TT Console password")
		return len(resets) == 2
	})
	older, link := linkIn(t, resets[0].Text, "/password/reset/"), linkIn(t, resets[1].Text, "/password/reset/")
	if !strings.HasPrefix(link, srv.URL+"/password/reset/") || !strings.Contains(resets[1].Text, "30 minutes") {
		t.Fatalf("reset mail:\n%s", resets[1].Text)
	}
	if href, _ := testenv.Doc(t, resets[1].HTML).Find("a").First().Attr("href"); href != link {
		t.Errorf("the HTML part links to %q, want %q", href, link)
	}

	res, page := visitor.get(pathOf(t, link))
	if res.StatusCode != http.StatusOK || !strings.Contains(page, "ada@example.com") ||
		testenv.Doc(t, page).Find(`input[name=password][type=password]`).Length() != 1 {
		t.Fatalf("the link's page: %d", res.StatusCode)
	}
	res, page = visitor.post(pathOf(t, link), pathOf(t, link), url.Values{"password": {"short"}})
	if res.StatusCode != http.StatusUnprocessableEntity || fieldError(t, page, "password") != "Use at least 10 characters." {
		t.Fatalf("a short password: %d, message %q", res.StatusCode, fieldError(t, page, "password"))
	}
	res, _ = visitor.post(pathOf(t, link), pathOf(t, link), url.Values{"password": {"a brand new passphrase"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login" {
		t.Fatalf("setting the password: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	if _, page := visitor.get("/login"); !strings.Contains(page, "Your password is set") {
		t.Error("the login page does not say the password is set")
	}
	// The reset is in the audit log of Ada's account, by Ada.
	ada, err := srv.Store.UserByEmail(ctx, "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	audit, _, err := srv.Store.AuditLog(ctx, ada.AccountID, models.AuditFilter{Action: models.AuditPasswordReset}, 10)
	if err != nil || len(audit) != 1 || audit[0].Actor != "ada@example.com" || audit[0].IP == "" {
		t.Errorf("the reset in the audit log: %+v %v", audit, err)
	}

	if laptop.signedIn() || phone.signedIn() {
		t.Error("a session signed in before the reset is still signed in")
	}
	if n := len(sessionsOf(t, srv, "ada@example.com")); n != 0 {
		t.Errorf("%d sessions left after the reset", n)
	}
	if res, _ := newBrowser(t, srv).login("ada@example.com", "correct horse battery"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("the old password: %d, want 401", res.StatusCode)
	}
	again := newBrowser(t, srv)
	if res, _ := again.login("ada@example.com", "a brand new passphrase"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("the new password: %d, want 303", res.StatusCode)
	}
	if _, page := again.get("/"); strings.Contains(page, "Confirm your email address") {
		t.Error("the reset link reached the address, yet the console still asks to confirm it")
	}

	// Used, older, expired and unknown links: a page that says so, with
	// the way to a new one; the password stays.
	u, err := srv.Store.UserByEmail(ctx, "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	expired, err := srv.Store.NewUserToken(ctx, models.TokenReset, u, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	for name, path := range map[string]string{
		"used": pathOf(t, link), "older": pathOf(t, older), "expired": "/password/reset/" + expired, "unknown": "/password/reset/nope",
	} {
		res, page := visitor.get(path)
		doc := testenv.Doc(t, page)
		if href, _ := doc.Find(`[data-testid=link-invalid] a[href="/password/forgot"]`).Attr("href"); res.StatusCode != http.StatusGone ||
			!strings.Contains(doc.Find("h1").Text(), "no longer valid") || href == "" {
			t.Errorf("the %s link: %d %q, want 410, no longer valid, and a link to ask again", name, res.StatusCode, doc.Find("h1").Text())
		}
		if name == "unknown" {
			continue
		}
		res, _ = newBrowser(t, srv).post("/password/forgot", path, url.Values{"password": {"attacker passphrase"}})
		if res.StatusCode != http.StatusGone {
			t.Errorf("posting to the %s link: %d, want 410", name, res.StatusCode)
		}
	}
	if res, _ := newBrowser(t, srv).login("ada@example.com", "a brand new passphrase"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("after the invalid links, the password set by the reset: %d, want 303", res.StatusCode)
	}
}

// TestPasswordChangeVoidsResetLinks: a reset link mailed before the
// password was changed on the Account page no longer works, so whoever
// reads the old mail cannot take the account back; a link asked for after
// the change does.
func TestPasswordChangeVoidsResetLinks(t *testing.T) {
	srv := testenv.NewServer(t)
	ctx := context.Background()
	ada := newBrowser(t, srv)
	ada.signup("ada@example.com", "correct horse battery")
	u, err := srv.Store.UserByEmail(ctx, "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	before, err := srv.Store.NewUserToken(ctx, models.TokenReset, u, 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	res, _ := ada.post("/account", "/account/password", url.Values{
		"current_password": {"correct horse battery"}, "new_password": {"a brand new passphrase"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("change password: %d", res.StatusCode)
	}
	attacker := newBrowser(t, srv)
	if res, _ := attacker.get("/password/reset/" + before); res.StatusCode != http.StatusGone {
		t.Errorf("a reset link from before the change: %d, want 410", res.StatusCode)
	}
	if res, _ := attacker.post("/password/forgot", "/password/reset/"+before, url.Values{"password": {"attacker passphrase"}}); res.StatusCode != http.StatusGone {
		t.Errorf("setting a password through it: %d, want 410", res.StatusCode)
	}
	if res, _ := newBrowser(t, srv).login("ada@example.com", "a brand new passphrase"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("the changed password: %d, want 303", res.StatusCode)
	}
	after, err := srv.Store.NewUserToken(ctx, models.TokenReset, u, 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := attacker.get("/password/reset/" + after); res.StatusCode != http.StatusOK {
		t.Errorf("a reset link asked for after the change: %d, want 200", res.StatusCode)
	}
}

// TestForgotAnswersTheSameForKnownAndUnknownEmails: an address with an
// account, the same typed differently, and one without get the same page
// in about the same time; only the account gets a mail.
func TestForgotAnswersTheSameForKnownAndUnknownEmails(t *testing.T) {
	srv := behindProxy(t)
	const rounds = 10
	for i := range rounds {
		if _, err := srv.Store.CreateAccount(context.Background(), fmt.Sprintf("known%d@example.com", i), "correct horse battery"); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct{ name, email string }{
		{"known", "known%d@example.com"},
		{"known, typed in capitals", " KNOWN%d@Example.COM"},
		{"unknown", "unknown%d@example.com"},
	}
	took := map[string][]time.Duration{}
	var pages []string
	for round := range rounds {
		for i := range cases {
			tc := cases[(i+round)%len(cases)] // each goes first in turn
			email := fmt.Sprintf(tc.email, round)
			b := browserAt(t, srv, fmt.Sprintf("198.51.100.%d", 10*round+i+1))
			res, page, d := b.postTimed("/password/forgot", "/password/forgot", url.Values{"email": {email}})
			if res.StatusCode != http.StatusOK {
				t.Fatalf("%s: %d", tc.name, res.StatusCode)
			}
			main, err := testenv.Doc(t, page).Find("main").Html()
			if err != nil {
				t.Fatal(err)
			}
			pages = append(pages, strings.ReplaceAll(main, models.NormalizeEmail(email), "EMAIL"))
			took[tc.name] = append(took[tc.name], d)
			// The link is made and queued after the answer: let that
			// work end before the next request is timed.
			time.Sleep(30 * time.Millisecond)
		}
	}
	for i, p := range pages {
		if p != pages[0] {
			t.Fatalf("answer %d differs from the first:\n%s\n---\n%s", i, p, pages[0])
		}
	}
	if !strings.Contains(pages[0], "If an account uses <strong>EMAIL</strong>") {
		t.Errorf("the answer does not say what happens:\n%s", pages[0])
	}
	// Tolerant: each path's median answer is within twice every other's.
	// Looking the address up and queueing its link before answering
	// takes two to three times as long.
	medians := map[string]time.Duration{}
	for name, ds := range took {
		slices.Sort(ds)
		medians[name] = ds[len(ds)/2]
	}
	t.Logf("median answers: %v", medians)
	for a, da := range medians {
		for b, db := range medians {
			if da > 2*db {
				t.Errorf("%s answers in %v, %s in %v: the time tells them apart", a, da, b, db)
			}
		}
	}

	eventually(t, 5*time.Second, "a reset mail for each request about a known address", func() bool {
		return len(outbox(t, srv, "known0@example.com")) == 2 && len(outbox(t, srv, fmt.Sprintf("known%d@example.com", rounds-1))) == 2
	})
	for round := range rounds {
		if n := len(outbox(t, srv, fmt.Sprintf("unknown%d@example.com", round))); n != 0 {
			t.Errorf("%d mails to an address without an account", n)
		}
	}
}

// TestForgotChecksTheAddressAndIsThrottled: a missing or malformed
// address is answered beside the field; one address gets three links in a
// row, one client ten, then both wait.
func TestForgotChecksTheAddressAndIsThrottled(t *testing.T) {
	srv := behindProxy(t)
	if _, err := srv.Store.CreateAccount(context.Background(), "ada@example.com", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	for email, want := range map[string]string{"": "Enter your email address.", "ada@": "Enter a valid email address, like you@example.com."} {
		res, page := newBrowser(t, srv).post("/password/forgot", "/password/forgot", url.Values{"email": {email}})
		if res.StatusCode != http.StatusUnprocessableEntity || fieldError(t, page, "email") != want {
			t.Errorf("email %q: %d %q, want 422 %q", email, res.StatusCode, fieldError(t, page, "email"), want)
		}
	}

	limited := func(res *http.Response, page string) bool {
		if res.StatusCode != http.StatusTooManyRequests {
			return false
		}
		if n, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || n < 1 ||
			!strings.Contains(testenv.Doc(t, page).Find(".form-error").Text(), "Too many reset links asked for. Wait") {
			t.Errorf("429 without Retry-After (%q) or a message saying when to retry", res.Header.Get("Retry-After"))
		}
		return true
	}
	// One address, asked from many clients.
	for i := range 4 {
		res, page := browserAt(t, srv, fmt.Sprintf("203.0.113.%d", i+1)).post("/password/forgot", "/password/forgot",
			url.Values{"email": {"ada@example.com"}})
		if got := limited(res, page); got != (i == 3) {
			t.Fatalf("request %d for one address: %d", i+1, res.StatusCode)
		}
	}
	eventually(t, 5*time.Second, "three reset mails", func() bool { return len(outbox(t, srv, "ada@example.com")) == 3 })
	// One client, asking about many addresses.
	b := browserAt(t, srv, "192.0.2.1")
	for i := range 11 {
		res, page := b.post("/password/forgot", "/password/forgot", url.Values{"email": {fmt.Sprintf("someone%d@example.com", i)}})
		if got := limited(res, page); got != (i == 10) {
			t.Fatalf("request %d from one client: %d", i+1, res.StatusCode)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(outbox(t, srv, "ada@example.com")); n != 3 {
		t.Errorf("%d reset mails after the throttle, want 3", n)
	}
}
