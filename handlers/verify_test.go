package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"ttconsole/internal/smtptest"
	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// banner is the text of the page's "confirm your email" banner, or "".
func banner(t *testing.T, page string) string {
	t.Helper()
	return strings.Join(strings.Fields(testenv.Doc(t, page).Find(`[data-testid=verify-banner]`).Text()), " ")
}

// TestEmailVerificationEndToEnd: a sign-up mails a confirmation link and
// the console shows a banner until it is followed; the banner sends the
// link again, a few times an hour; a link that no longer works says so.
func TestEmailVerificationEndToEnd(t *testing.T) {
	smtp := smtptest.Start(t, smtptest.Options{})
	srv := mailServer(t, smtp)
	b := newBrowser(t, srv)
	b.signup("ada@example.com", "correct horse battery")

	_, page := b.get("/keys")
	if got := banner(t, page); got != "Confirm your email address — we sent a link to ada@example.com. Send again" {
		t.Fatalf("the banner after sign-up says %q", got)
	}
	first := mailAbout(smtp.WaitFor(t, "ada@example.com", 1, 10*time.Second), "Confirm your email address")
	if len(first) != 1 {
		t.Fatal("no confirmation mail after sign-up")
	}
	firstLink := linkIn(t, first[0].Text, "/verify/")

	// Send again, from the Keys page: back there, with a new link.
	res, _ := b.post("/keys", "/verify/resend", url.Values{"back": {"/keys"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/keys" {
		t.Fatalf("send again: %d to %q, want 303 to /keys", res.StatusCode, res.Header.Get("Location"))
	}
	if _, page := b.get("/keys"); !strings.Contains(page, "We sent a new link to ada@example.com") {
		t.Error("the page returned to does not say a new link was sent")
	}
	mails := smtp.WaitFor(t, "ada@example.com", 2, 10*time.Second)
	newLink := linkIn(t, mails[1].Text, "/verify/")
	if newLink == firstLink {
		t.Fatal("the link sent again is the first one")
	}
	// Two more, then a wait.
	for range 2 {
		if res, _ := b.post("/", "/verify/resend", nil); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("send again: %d", res.StatusCode)
		}
	}
	res, _ = b.post("/", "/verify/resend", nil)
	if _, page := b.get("/"); res.StatusCode != http.StatusSeeOther || res.Header.Get("Retry-After") == "" ||
		!strings.Contains(page, "We sent a link a moment ago") {
		t.Errorf("a fourth send again in a row: %d, Retry-After %q, want the page to say to wait", res.StatusCode, res.Header.Get("Retry-After"))
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(mailAbout(smtp.Messages(), "Confirm your email address")); n != 4 {
		t.Errorf("%d confirmation mails, want 4: the sign-up's and three sent again", n)
	}

	// An unknown link, and one that expired: still unconfirmed.
	u, err := srv.Store.UserByEmail(context.Background(), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	expired, err := srv.Store.NewUserToken(context.Background(), models.TokenVerify, u, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	for name, path := range map[string]string{"unknown": "/verify/nope", "expired": "/verify/" + expired} {
		res, page := b.get(path)
		doc := testenv.Doc(t, page)
		if res.StatusCode != http.StatusGone || !strings.Contains(doc.Find("h1").Text(), "no longer valid") ||
			doc.Find(`[data-testid=link-invalid] form[action="/verify/resend"]`).Length() != 1 {
			t.Errorf("the %s link: %d %q, want 410, no longer valid, and a button to send a new one", name, res.StatusCode, doc.Find("h1").Text())
		}
	}
	if _, page := b.get("/"); banner(t, page) == "" {
		t.Fatal("an invalid link confirmed the address")
	}

	// The first link still works (7 days), in a browser not signed in:
	// to log in, where the address is confirmed.
	stranger := newBrowser(t, srv)
	res, err = stranger.c.Get(firstLink)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login" {
		t.Fatalf("the link, signed out: %d to %q, want 303 to /login", res.StatusCode, res.Header.Get("Location"))
	}
	if _, page := stranger.get("/login"); !strings.Contains(page, "Thank you: ada@example.com is confirmed.") {
		t.Error("the login page does not say the address is confirmed")
	}
	_, page = b.get("/")
	if banner(t, page) != "" {
		t.Error("the banner is still there once the address is confirmed")
	}
	// Used: nothing more to do, and it says so rather than failing.
	res, _ = b.get(pathOf(t, firstLink))
	if res.StatusCode != http.StatusSeeOther {
		t.Errorf("the used link, the address confirmed: %d, want 303", res.StatusCode)
	}
	if _, page := b.get("/"); !strings.Contains(page, "is confirmed") {
		t.Error("the used link, the address confirmed: the page does not say so")
	}
	// Confirmed: send again sends nothing.
	b.post("/", "/verify/resend", nil)
	time.Sleep(100 * time.Millisecond)
	if n := len(mailAbout(smtp.Messages(), "Confirm your email address")); n != 4 {
		t.Errorf("%d confirmation mails after the address was confirmed, want still 4", n)
	}
}

// TestAccountsMadeByAnOperatorAreConfirmed: an account the admin CLI (or
// a test's FundedKey) makes has no banner.
func TestAccountsMadeByAnOperatorAreConfirmed(t *testing.T) {
	srv := testenv.NewServer(t)
	testenv.FundedKey(t, srv.Store, "ops@example.com", 0, models.KeyInput{Name: "ci"})
	b := newBrowser(t, srv)
	if res, _ := b.post("/login", "/login", url.Values{"email": {"ops@example.com"}, "password": {testenv.Password}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", res.StatusCode)
	}
	if _, page := b.get("/"); banner(t, page) != "" || !strings.Contains(page, "ops@example.com") {
		t.Errorf("an operator's account: banner %q", banner(t, page))
	}
}
