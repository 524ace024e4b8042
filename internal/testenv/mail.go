package testenv

import (
	"testing"
	"time"

	"ttconsole/internal/mailer"
	"ttconsole/internal/smtptest"
)

// Mailer is the product's SMTP sender configured, as SMTP_URL would be,
// to send to a test's SMTP server, trusting its certificate.
func Mailer(t testing.TB, s *smtptest.Server) *mailer.SMTP {
	t.Helper()
	cfg, err := mailer.ParseURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	return &mailer.SMTP{Config: *cfg, From: "TT Console <no-reply@tt.example>", RootCAs: s.RootCAs(), Timeout: 5 * time.Second}
}
