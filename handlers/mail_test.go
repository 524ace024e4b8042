package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"ttconsole/handlers"
	"ttconsole/internal/smtptest"
	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// sendingTo makes an app send its mail to an SMTP server of the test, and
// look for mail due and retry failed attempts every few milliseconds.
func sendingTo(t *testing.T, s *smtptest.Server) func(*handlers.App) {
	return func(a *handlers.App) {
		a.Mailer = testenv.Mailer(t, s)
		a.MailPoll = 20 * time.Millisecond
		a.MailRetries = nil
		for range 50 {
			a.MailRetries = append(a.MailRetries, 100*time.Millisecond)
		}
	}
}

// mailServer starts the product sending its mail to s.
func mailServer(t *testing.T, s *smtptest.Server, more ...func(*handlers.App)) *testenv.Server {
	t.Helper()
	return testenv.NewServer(t, testenv.Options{Adjust: func(a *handlers.App) {
		sendingTo(t, s)(a)
		for _, f := range more {
			f(a)
		}
	}})
}

// outbox returns the outbox's rows for an address.
func outbox(t *testing.T, srv *testenv.Server, to string) []models.Mail {
	t.Helper()
	ms, err := srv.Store.MailTo(context.Background(), to)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// eventually waits up to timeout for cond, failing the test with what.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// linkPattern finds a console link in a mail's text.
func linkIn(t *testing.T, text, path string) string {
	t.Helper()
	m := regexp.MustCompile(`https?://\S+` + regexp.QuoteMeta(path) + `\S+`).FindString(text)
	if m == "" {
		t.Fatalf("no %s link in the mail:\n%s", path, text)
	}
	return m
}

// TestMailIsDeliveredWithTextAndHTML: a queued mail reaches the SMTP
// server over STARTTLS with the credentials of SMTP_URL, as plain text
// and an HTML part that shows the same words escaped, with the link
// clickable.
func TestMailIsDeliveredWithTextAndHTML(t *testing.T) {
	smtp := smtptest.Start(t, smtptest.Options{StartTLS: true, Username: "tt", Password: "p@ss word"})
	srv := mailServer(t, smtp)
	link := srv.App.Link("/keys?a=1&b=2")
	text := "Dear Ada & co,\n\n<script>alert(1)</script>\nOpen " + link + ".\n\nThe TT team"
	if err := srv.App.SendMail(context.Background(), "ada@example.com", "Keys <soon> & more", text); err != nil {
		t.Fatal(err)
	}
	got := smtp.WaitFor(t, "ada@example.com", 1, 10*time.Second)[0]

	if !got.TLS || got.User != "tt" {
		t.Errorf("delivered with TLS %v as user %q, want STARTTLS and the user of SMTP_URL", got.TLS, got.User)
	}
	if got.Subject != "Keys <soon> & more" || !strings.Contains(got.Header.Get("From"), "no-reply@tt.example") {
		t.Errorf("subject %q from %q", got.Subject, got.Header.Get("From"))
	}
	if !strings.Contains(got.Text, "<script>alert(1)</script>") || !strings.Contains(got.Text, link) {
		t.Errorf("the text part is not the text queued:\n%s", got.Text)
	}
	if strings.Contains(got.HTML, "<script>") || !strings.Contains(got.HTML, "&lt;script&gt;alert(1)&lt;/script&gt;") ||
		!strings.Contains(got.HTML, "Dear Ada &amp; co,") {
		t.Errorf("the HTML part does not escape the text:\n%s", got.HTML)
	}
	doc := testenv.Doc(t, got.HTML)
	if href, _ := doc.Find("a").First().Attr("href"); href != link {
		t.Errorf("the HTML part links to %q, want %q (without the full stop after it)", href, link)
	}
	if !strings.HasPrefix(got.Header.Get("Message-Id"), "<mail_") {
		t.Errorf("Message-ID %q, want the outbox id, the same on every attempt", got.Header.Get("Message-Id"))
	}
	eventually(t, 5*time.Second, "the mail is marked sent", func() bool {
		ms := outbox(t, srv, "ada@example.com")
		return len(ms) == 1 && ms[0].SentAt != nil && ms[0].NextAttemptAt == nil && ms[0].Attempts == 1
	})
}

// postTimed submits a form and returns its answer and how long the POST
// alone took.
func (b *browser) postTimed(formPath, path string, vals url.Values) (*http.Response, string, time.Duration) {
	b.t.Helper()
	vals.Set("_csrf", b.csrf(formPath))
	start := time.Now()
	res, err := b.c.PostForm(b.srv.URL+path, vals)
	took := time.Since(start)
	if err != nil {
		b.t.Fatal(err)
	}
	return res, testenv.Body(b.t, res), took
}

// TestMailServerDownDoesNotFailThePage: with the SMTP server down, asking
// for a reset link answers at once; the mail waits in the outbox with the
// error, is tried again, and arrives once the server is up.
func TestMailServerDownDoesNotFailThePage(t *testing.T) {
	smtp := smtptest.Reserve(t, smtptest.Options{})
	srv := mailServer(t, smtp)
	if _, err := srv.Store.CreateAccount(context.Background(), "ada@example.com", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	res, page, took := newBrowser(t, srv).postTimed("/password/forgot", "/password/forgot", url.Values{"email": {"ada@example.com"}})
	if res.StatusCode != http.StatusOK || !strings.Contains(page, "we have sent it a link") {
		t.Fatalf("forgot with the mail server down: %d", res.StatusCode)
	}
	if took > time.Second {
		t.Errorf("forgot took %v with the mail server down, want under a second", took)
	}
	eventually(t, 5*time.Second, "two attempts failed, with their error kept", func() bool {
		ms := outbox(t, srv, "ada@example.com")
		return len(ms) == 1 && ms[0].Attempts >= 2 && ms[0].LastError != "" && ms[0].SentAt == nil
	})
	if n := len(smtp.Messages()); n != 0 {
		t.Fatalf("%d mails delivered while the server was down", n)
	}

	smtp.Up(t)
	got := smtp.WaitFor(t, "ada@example.com", 1, 10*time.Second)[0]
	linkIn(t, got.Text, "/password/reset/")
	eventually(t, 5*time.Second, "the mail is marked sent", func() bool {
		ms := outbox(t, srv, "ada@example.com")
		return ms[0].SentAt != nil && ms[0].LastError == ""
	})
}

// TestSlowMailServerDoesNotSlowThePage: a mail server that takes seconds
// to accept a message does not hold up the page that sent it.
func TestSlowMailServerDoesNotSlowThePage(t *testing.T) {
	smtp := smtptest.Start(t, smtptest.Options{Delay: 3 * time.Second})
	srv := mailServer(t, smtp)
	b := newBrowser(t, srv)
	b.signup("ada@example.com", "correct horse battery") // queues a confirmation link
	res, _, took := b.postTimed("/password/forgot", "/password/forgot", url.Values{"email": {"ada@example.com"}})
	if res.StatusCode != http.StatusOK || took > time.Second {
		t.Errorf("forgot answered %d in %v while the mail server took 3 s a message, want 200 under a second", res.StatusCode, took)
	}
	smtp.WaitFor(t, "ada@example.com", 2, 20*time.Second)
}

// TestQueuedMailSurvivesARestart: a mail still waiting when the server
// stops is sent by the next server on the same database.
func TestQueuedMailSurvivesARestart(t *testing.T) {
	smtp := smtptest.Reserve(t, smtptest.Options{})
	db := testenv.DB(t)
	first := testenv.NewServerOn(t, db, testenv.Options{Adjust: sendingTo(t, smtp)})
	if err := first.App.SendMail(context.Background(), "ada@example.com", "Hello", "Still there?"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the first attempt failed", func() bool {
		ms := outbox(t, first, "ada@example.com")
		return len(ms) == 1 && ms[0].Attempts >= 1 && ms[0].LastError != ""
	})
	first.Close()
	first.App.Close()

	smtp.Up(t)
	time.Sleep(300 * time.Millisecond)
	if n := len(smtp.Messages()); n != 0 {
		t.Fatalf("%d mails sent by a stopped server", n)
	}
	second := testenv.NewServerOn(t, db, testenv.Options{Adjust: sendingTo(t, smtp)})
	got := smtp.WaitFor(t, "ada@example.com", 1, 10*time.Second)
	if got[0].Text != "Still there?" {
		t.Errorf("the mail after the restart says %q", got[0].Text)
	}
	eventually(t, 5*time.Second, "the mail is marked sent", func() bool {
		return outbox(t, second, "ada@example.com")[0].SentAt != nil
	})
}

// TestMailIsGivenUpAfterItsLastAttempt: a mail that never goes through is
// tried once more per wait, then kept with its error and left alone.
func TestMailIsGivenUpAfterItsLastAttempt(t *testing.T) {
	smtp := smtptest.Reserve(t, smtptest.Options{}) // never up
	srv := mailServer(t, smtp, func(a *handlers.App) {
		a.MailRetries = []time.Duration{30 * time.Millisecond, 30 * time.Millisecond}
	})
	if err := srv.App.SendMail(context.Background(), "ada@example.com", "Hello", "Lost"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the mail is given up", func() bool {
		return outbox(t, srv, "ada@example.com")[0].FailedAt != nil
	})
	time.Sleep(300 * time.Millisecond)
	m := outbox(t, srv, "ada@example.com")[0]
	if m.Attempts != 3 || m.NextAttemptAt != nil || m.SentAt != nil || m.LastError == "" {
		t.Errorf("given up after %d attempts (next %v, sent %v, error %q), want 3 attempts, no next, its error kept",
			m.Attempts, m.NextAttemptAt, m.SentAt, m.LastError)
	}
	if n := scraped(t, srv, "tt_mail_given_up_total"); n != 1 {
		t.Errorf("tt_mail_given_up_total = %v, want 1", n)
	}
	if n := scraped(t, srv, "tt_mail_failed_attempts_total"); n != 3 {
		t.Errorf("tt_mail_failed_attempts_total = %v, want 3", n)
	}
}

// TestTwoInstancesSendEachMailOnce: two instances on one database, both
// looking for mail due every few milliseconds, deliver every queued mail
// exactly once.
func TestTwoInstancesSendEachMailOnce(t *testing.T) {
	smtp := smtptest.Start(t, smtptest.Options{})
	servers := testenv.Instances(t, 2, testenv.Options{Adjust: func(a *handlers.App) {
		sendingTo(t, smtp)(a)
		a.MailPoll = 5 * time.Millisecond
	}})
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := servers[i%2].App.SendMail(context.Background(), fmt.Sprintf("user%d@example.com", i), "Hello", "Once"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	eventually(t, 20*time.Second, "every mail delivered", func() bool { return len(smtp.Messages()) >= n })
	time.Sleep(500 * time.Millisecond) // time for a duplicate to show
	seen := map[string]int{}
	for _, m := range smtp.Messages() {
		seen[m.To[0]]++
	}
	for i := range n {
		if to := fmt.Sprintf("user%d@example.com", i); seen[to] != 1 {
			t.Errorf("%s got %d mails, want 1", to, seen[to])
		}
	}
	if len(smtp.Messages()) != n {
		t.Errorf("%d mails delivered for %d queued", len(smtp.Messages()), n)
	}
}

// syncBuffer is a log both the server and the test use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestMailWithoutSMTPGoesToTheLog: without SMTP_URL a mail is written to
// the server's log, link included, and marked sent; the link works.
func TestMailWithoutSMTPGoesToTheLog(t *testing.T) {
	var log logBuffer
	srv := testenv.NewServer(t, testenv.Options{Adjust: func(a *handlers.App) {
		a.Log = slog.New(slog.NewJSONHandler(&log, nil))
	}})
	b := newBrowser(t, srv)
	b.signup("ada@example.com", "correct horse battery")

	var line struct{ Msg, To, Subject, Text string }
	eventually(t, 5*time.Second, "the confirmation mail is in the log", func() bool {
		for _, l := range strings.Split(log.String(), "\n") {
			if strings.Contains(l, `"mail not sent`) && json.Unmarshal([]byte(l), &line) == nil {
				return true
			}
		}
		return false
	})
	if line.To != "ada@example.com" || !strings.Contains(line.Subject, "Confirm your email") {
		t.Errorf("the log says a mail to %q about %q", line.To, line.Subject)
	}
	eventually(t, 5*time.Second, "the mail is marked sent", func() bool {
		ms := outbox(t, srv, "ada@example.com")
		return len(ms) == 1 && ms[0].SentAt != nil
	})
	link := linkIn(t, line.Text, "/verify/")
	if !strings.HasPrefix(link, srv.URL+"/verify/") {
		t.Fatalf("the link %s does not lead to the server at %s", link, srv.URL)
	}
	res, err := b.c.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if _, page := b.get("/"); res.StatusCode != http.StatusSeeOther || strings.Contains(page, "Confirm your email address") {
		t.Errorf("following the logged link: %d, and the banner is still there: %v", res.StatusCode, strings.Contains(page, "Confirm your email address"))
	}
}
