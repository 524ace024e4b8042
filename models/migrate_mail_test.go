package models_test

import (
	"context"
	"testing"
	"time"

	"ttconsole/models"
)

// TestVersion22ForgetsSentMailText: the text that earlier versions kept
// of mail already sent, links included, is cleared; mail still waiting to
// go out keeps its text.
func TestVersion22ForgetsSentMailText(t *testing.T) {
	db, p := migratedTo(t, 21)
	ctx := context.Background()
	now := time.Now().UTC()
	for _, m := range []struct {
		id   string
		sent any
	}{{"mail_sent", now}, {"mail_waiting", nil}} {
		if err := db.Writer().Exec(`INSERT INTO mail_outbox (id, recipient, subject, text_body, html_body, created_at, attempts, sent_at)
			VALUES (?, 'ada@example.com', 'Join', 'Open https://tt.example/invitations/secret', '<a href="https://tt.example/invitations/secret">Join</a>', ?, 1, ?)`,
			m.id, now, m.sent).Error; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.UpTo(ctx, 22); err != nil {
		t.Fatal(err)
	}
	ms, err := models.NewStore(db).MailTo(ctx, "ada@example.com")
	if err != nil || len(ms) != 2 {
		t.Fatalf("mails %+v %v", ms, err)
	}
	for _, m := range ms {
		kept := m.TextBody != "" && m.HTMLBody != ""
		if m.Subject != "Join" || kept != (m.ID == "mail_waiting") {
			t.Errorf("%s after version 22: subject %q, text %q, HTML %q", m.ID, m.Subject, m.TextBody, m.HTMLBody)
		}
	}
}
