package handlers_test

import (
	"strings"
	"testing"
	"time"

	"ttconsole/handlers"
	"ttconsole/internal/smtptest"
	"ttconsole/internal/testenv"
)

// TestTopupMailsReachTheMailServer: a declined auto top-up's alert and a
// paid one's receipt go through the outbox to the SMTP server, to the
// account's owner, with links to the console's public address.
func TestTopupMailsReachTheMailServer(t *testing.T) {
	smtp := smtptest.Start(t, smtptest.Options{StartTLS: true})
	box := &mailbox{}
	opts := topupOptions(box)
	opts.Config.BaseURL = "https://console.example"
	adjust := opts.Adjust
	opts.Adjust = func(a *handlers.App) {
		adjust(a)
		sendingTo(t, smtp)(a)
	}
	srv := testenv.NewServer(t, opts)

	declined := topupAccount(t, srv, "ada@example.com", "9995", 6, "100")
	declined.credit(-1.50)
	declined.round()
	paid := topupAccount(t, srv, "bob@example.com", "4242", 6, "100")
	paid.credit(-1.50)
	paid.round()
	paid.round()

	// Each also had the mail that confirms its address.
	m := withSubject(t, smtp.WaitFor(t, "ada@example.com", 2, 10*time.Second), "Auto top-up of $20.00 was declined")
	if !strings.Contains(m.Text, "insufficient funds") || !strings.Contains(m.Text, "https://console.example/billing#auto-topup") {
		t.Fatalf("decline mail:\n%s", m.Text)
	}
	top := paid.topups()[0]
	m = withSubject(t, smtp.WaitFor(t, "bob@example.com", 2, 10*time.Second), "Receipt 000001 from TT Console: $20.00")
	if !strings.Contains(m.Text, "Visa •••• 4242") || !strings.Contains(m.Text, "https://console.example/billing/payments/"+top.ID+"/receipt") {
		t.Fatalf("receipt mail:\n%s", m.Text)
	}
}

// withSubject returns the one message with this subject.
func withSubject(t *testing.T, ms []smtptest.Message, subject string) smtptest.Message {
	t.Helper()
	var found []smtptest.Message
	for _, m := range ms {
		if m.Subject == subject {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		var subjects []string
		for _, m := range ms {
			subjects = append(subjects, m.Subject)
		}
		t.Fatalf("%d mails %q, want 1; subjects: %q", len(found), subject, subjects)
	}
	return found[0]
}
