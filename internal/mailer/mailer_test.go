package mailer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"ttconsole/internal/mailer"
	"ttconsole/internal/smtptest"
	"ttconsole/internal/testenv"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want mailer.SMTPConfig
	}{
		{"smtp://mail.example.com", mailer.SMTPConfig{Host: "mail.example.com", Port: 587}},
		{"smtp://user:p%40ss@mail.example.com:2525", mailer.SMTPConfig{Host: "mail.example.com", Port: 2525, Username: "user", Password: "p@ss"}},
		{"smtps://user:pass@mail.example.com", mailer.SMTPConfig{Host: "mail.example.com", Port: 465, ImplicitTLS: true, Username: "user", Password: "pass"}},
		{"SMTPS://[::1]:4650/", mailer.SMTPConfig{Host: "::1", Port: 4650, ImplicitTLS: true}},
		{"smtp://apikey@mail.example.com", mailer.SMTPConfig{Host: "mail.example.com", Port: 587, Username: "apikey"}},
	} {
		got, err := mailer.ParseURL(tc.in)
		if err != nil || *got != tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ in, says string }{
		{"mail.example.com:587", "smtp://"},
		{"http://mail.example.com", "must start with smtp:// or smtps://"},
		{"smtp://", "names no host"},
		{"smtp://user:secret@mail.example.com:99999", "port"},
		{"smtp://user:secret@mail.example.com:587/inbox", "path or options"},
		{"smtp://user:secret@mail.example.com:587?tls=off", "path or options"},
		{"smtp://:secret@mail.example.com", "a password but no user name"},
		{"smtp://user:secret@mail example.com", "not a URL"},
	} {
		_, err := mailer.ParseURL(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want an error saying %q", tc.in, err, tc.says)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error repeats the password: %v", tc.in, err)
		}
	}
}

func TestParseFrom(t *testing.T) {
	for _, ok := range []string{mailer.DefaultFrom, "no-reply@example.com", `"TT, Console" <a@b.example>`} {
		if _, err := mailer.ParseFrom(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"TT Console", "<>", "a@"} {
		if _, err := mailer.ParseFrom(bad); err == nil || !strings.Contains(err.Error(), "TT_MAIL_FROM") {
			t.Errorf("%q: %v, want an error naming TT_MAIL_FROM", bad, err)
		}
	}
}

// TestSendOverEachKindOfConnection: STARTTLS when offered, TLS from the
// start with smtps://, plain when no TLS is offered; credentials go only
// over TLS, so a server that asks for them without offering TLS gets a
// refusal, not the password.
func TestSendOverEachKindOfConnection(t *testing.T) {
	msg := mailer.Message{ID: "mail_1", To: "ada@example.com", Subject: "Hello", Text: "Hi", HTML: "<p>Hi</p>", Date: time.Now()}
	for _, tc := range []struct {
		name    string
		opts    smtptest.Options
		wantTLS bool
	}{
		{"STARTTLS with a password", smtptest.Options{StartTLS: true, Username: "u", Password: "pw"}, true},
		{"implicit TLS with a password", smtptest.Options{ImplicitTLS: true, Username: "u", Password: "pw"}, true},
		{"no TLS offered, no password", smtptest.Options{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := smtptest.Start(t, tc.opts)
			if err := testenv.Mailer(t, s).Send(context.Background(), msg); err != nil {
				t.Fatal(err)
			}
			got := s.WaitFor(t, "ada@example.com", 1, 5*time.Second)[0]
			if got.TLS != tc.wantTLS || got.User != tc.opts.Username || got.Text != "Hi" || got.HTML != "<p>Hi</p>" {
				t.Errorf("delivered over TLS %v as %q: %q / %q", got.TLS, got.User, got.Text, got.HTML)
			}
		})
	}

	t.Run("a password but no TLS offered", func(t *testing.T) {
		s := smtptest.Start(t, smtptest.Options{Username: "u", Password: "pw"})
		if err := testenv.Mailer(t, s).Send(context.Background(), msg); err == nil {
			t.Fatal("sent, so the password went in the clear")
		}
		if n := len(s.Messages()); n != 0 {
			t.Fatalf("%d messages accepted", n)
		}
	})
	t.Run("a certificate nobody vouches for", func(t *testing.T) {
		s := smtptest.Start(t, smtptest.Options{ImplicitTLS: true})
		m := testenv.Mailer(t, s)
		m.RootCAs = nil // the system's roots: the test's own certificate is not among them
		if err := m.Send(context.Background(), msg); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("sent to a server whose certificate is not trusted: %v", err)
		}
	})
}

func TestHTMLPart(t *testing.T) {
	got := mailer.HTML("A & B", "Hello <b>you</b>,\n\nsee https://x.example/a?b=1&c=2.\nOr (https://y.example/).\n\n\n\nBye")
	for _, want := range []string{
		"<title>A &amp; B</title>",
		`<p style="margin:0 0 16px">Hello &lt;b&gt;you&lt;/b&gt;,</p>`,
		`see <a href="https://x.example/a?b=1&amp;c=2" style="color:#1f5fd1;word-break:break-all">https://x.example/a?b=1&amp;c=2</a>.<br>`,
		`Or (<a href="https://y.example/" style="color:#1f5fd1;word-break:break-all">https://y.example/</a>).</p>`,
		`<p style="margin:0 0 16px">Bye</p>`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the HTML lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "<b>") {
		t.Errorf("the HTML has the text's markup unescaped:\n%s", got)
	}
}
