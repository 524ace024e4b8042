package main

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"ttconsole/internal/smtptest"
	"ttconsole/internal/testenv"
)

// TestServeRefusesMailSettingsItCannotUse: a mistake in SMTP_URL,
// TT_MAIL_FROM or TT_BASE_URL stops serve at start-up with a message
// naming the setting, never repeating the SMTP password.
func TestServeRefusesMailSettingsItCannotUse(t *testing.T) {
	for _, tc := range []struct{ name, env, value, says string }{
		{"SMTP_URL without a scheme", "SMTP_URL", "mail.example.com:587", "SMTP_URL"},
		{"SMTP_URL over http", "SMTP_URL", "http://user:secret@mail.example.com", "smtp:// or smtps://"},
		{"SMTP_URL without a host", "SMTP_URL", "smtps://user:secret@:465", "names no host"},
		{"SMTP_URL with a bad port", "SMTP_URL", "smtp://user:secret@mail.example.com:0", "port"},
		{"TT_MAIL_FROM not an address", "TT_MAIL_FROM", "TT Console", "TT_MAIL_FROM"},
		{"TT_BASE_URL without a scheme", "TT_BASE_URL", "console.example.com", "TT_BASE_URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLI(t)
			t.Setenv(tc.env, tc.value)
			stderr, err := c.serveOnce()
			if err == nil {
				t.Fatalf("serve started:\n%s", stderr)
			}
			if !strings.Contains(err.Error(), tc.says) || strings.Contains(err.Error(), "secret") {
				t.Errorf("refusal %q: want it to say %q, without the password", err, tc.says)
			}
		})
	}
}

// TestServeSendsMailThroughSMTPURL: serve, given SMTP_URL, mails a new
// account its confirmation link, which starts with the listen address
// when TT_BASE_URL is not set, from TT_MAIL_FROM.
func TestServeSendsMailThroughSMTPURL(t *testing.T) {
	smtp := smtptest.Start(t, smtptest.Options{})
	c := newCLI(t)
	t.Setenv("SMTP_URL", smtp.URL())
	t.Setenv("TT_MAIL_FROM", "Console <console@tt.example>")
	t.Setenv("TT_BASE_URL", "")

	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--db", c.path}, &stdout, &stderr) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve stopped with %v", err)
		}
	}()
	listening := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)
	var addr string
	for deadline := time.Now().Add(20 * time.Second); addr == ""; time.Sleep(10 * time.Millisecond) {
		if m := listening.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %s", stderr.String())
		}
	}
	if strings.Contains(stderr.String(), "SMTP_URL is not set") {
		t.Error("serve says SMTP_URL is not set")
	}

	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	res, err := client.Get("http://" + addr + "/signup")
	if err != nil {
		t.Fatal(err)
	}
	token := testenv.FieldValue(t, testenv.Body(t, res), "_csrf")
	res, err = client.PostForm("http://"+addr+"/signup", url.Values{
		"_csrf": {token}, "email": {"ada@example.com"}, "password": {"correct horse battery"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()

	got := smtp.WaitFor(t, "ada@example.com", 1, 10*time.Second)[0]
	if !strings.Contains(got.Text, "http://"+addr+"/verify/") {
		t.Errorf("the confirmation link does not start with the listen address %s:\n%s", addr, got.Text)
	}
	if from, err := mail.ParseAddress(got.Header.Get("From")); err != nil || got.From != "console@tt.example" ||
		from.Name != "Console" || from.Address != "console@tt.example" {
		t.Errorf("sent from %q (%q), want TT_MAIL_FROM", got.From, got.Header.Get("From"))
	}
}

// TestAdminAccountsAreConfirmed: an account made by the admin command
// counts as confirmed: its owner is not asked to confirm the address.
func TestAdminAccountsAreConfirmed(t *testing.T) {
	c := newCLI(t)
	if _, stderr, err := c.run("admin", "account", "create", "--email", "ops@example.com", "--password", "long enough password"); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	u, err := c.store().UserByEmail(context.Background(), "ops@example.com")
	if err != nil || u.EmailVerifiedAt == nil {
		t.Fatalf("the admin's account: %+v %v, want it confirmed", u, err)
	}
}
