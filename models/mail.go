package models

import (
	"context"
	"time"
)

// Mail is one message in the outbox: queued by a page, sent later by a
// background worker of any instance (see migrations/00017_mail.sql).
type Mail struct {
	ID            string
	Recipient     string
	Subject       string
	TextBody      string
	HTMLBody      string `gorm:"column:html_body"`
	CreatedAt     time.Time
	Attempts      int
	NextAttemptAt *time.Time // nil once sent or given up
	SentAt        *time.Time
	FailedAt      *time.Time // when it was given up
	LastError     string
}

// TableName is the outbox's table.
func (Mail) TableName() string { return "mail_outbox" }

// maxMailError bounds the error kept with a mail: an SMTP server's answer
// is a line or two.
const maxMailError = 1000

// EnqueueMail adds a message to the outbox, due at once, and returns its id.
func (s *Store) EnqueueMail(ctx context.Context, to, subject, text, html string) (string, error) {
	now := time.Now().UTC()
	m := Mail{ID: s.NewID("mail"), Recipient: to, Subject: subject, TextBody: text, HTMLBody: html,
		CreatedAt: now, NextAttemptAt: &now}
	return m.ID, s.db.w.WithContext(ctx).Create(&m).Error
}

// ClaimMail takes up to limit mails that are due at now for one attempt
// and returns them. Taking a mail counts its attempt and moves it out of
// reach until now+lease, in one guarded update, so the worker of another
// instance does not take it too: on PostgreSQL the rows are locked and
// others skip them (SKIP LOCKED); on SQLite there is one writer. A mail
// whose worker stopped before it could say how the attempt went is due
// again once its lease has passed.
func (s *Store) ClaimMail(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Mail, error) {
	now = now.UTC()
	lock := ""
	if s.db.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var out []Mail
	err := s.db.w.WithContext(ctx).Raw(`UPDATE mail_outbox SET next_attempt_at = ?, attempts = attempts + 1
		WHERE next_attempt_at <= ? AND id IN (
			SELECT id FROM mail_outbox WHERE next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?`+lock+`)
		RETURNING *`, now.Add(lease), now, now, limit).Scan(&out).Error
	return out, err
}

// MailSent records that a claimed mail was handed over, and forgets its
// text: a sent mail's links (an invitation's lasts 7 days) must not work
// for whoever reads the database, whose tokens are kept only as hashes.
// The row stays, a record of who was mailed what and when.
func (s *Store) MailSent(ctx context.Context, id string, at time.Time) error {
	return s.db.w.WithContext(ctx).Model(&Mail{}).Where("id = ?", id).Updates(map[string]any{
		"sent_at": at.UTC(), "next_attempt_at": nil, "last_error": "", "text_body": "", "html_body": "",
	}).Error
}

// MailFailed records a failed attempt: the mail is due again at next, or,
// when next is nil, given up and kept with its error.
func (s *Store) MailFailed(ctx context.Context, id, reason string, next *time.Time, at time.Time) error {
	if len(reason) > maxMailError {
		reason = reason[:maxMailError]
	}
	up := map[string]any{"last_error": reason, "next_attempt_at": nil}
	if next != nil {
		up["next_attempt_at"] = next.UTC()
	} else {
		up["failed_at"] = at.UTC()
	}
	return s.db.w.WithContext(ctx).Model(&Mail{}).Where("id = ?", id).Updates(up).Error
}

// ReleaseMail gives back a claimed mail whose attempt never happened (the
// worker was stopping): it is due at once, its attempt not counted.
func (s *Store) ReleaseMail(ctx context.Context, id string) error {
	return s.db.w.WithContext(ctx).Exec(
		`UPDATE mail_outbox SET next_attempt_at = ?, attempts = attempts - 1 WHERE id = ? AND sent_at IS NULL AND attempts > 0`,
		time.Now().UTC(), id).Error
}

// MailTo returns the mails queued for an address, oldest first.
func (s *Store) MailTo(ctx context.Context, to string) ([]Mail, error) {
	var out []Mail
	err := s.db.r.WithContext(ctx).Where("recipient = ?", to).Order("created_at, id").Find(&out).Error
	return out, err
}
