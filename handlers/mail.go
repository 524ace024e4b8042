package handlers

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"ttconsole/internal/mailer"
	"ttconsole/models"
)

// Mail goes through the outbox: a page queues it (sendMail, one insert)
// and a worker in each instance sends what is due, so a slow or failing
// mail server never slows or fails a page, and a restart loses nothing.
const (
	// DefaultMailPoll is how often the worker looks for mail due without
	// being woken: retries, and mail another instance queued and could not
	// send.
	DefaultMailPoll = 10 * time.Second
	// mailLease is how long a taken mail is out of other workers' reach:
	// longer than any attempt (go-mail's 30 s timeout, twice), so only a
	// worker that stopped mid-attempt lets it be taken again.
	mailLease = 5 * time.Minute
	// mailBatch is how many mails a worker takes at once.
	mailBatch = 10
)

// DefaultMailRetries are the waits after each failed attempt: six
// attempts over about eight and a half hours, then the mail is given up
// and kept with its error.
var DefaultMailRetries = []time.Duration{time.Minute, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 6 * time.Hour}

// sendMail queues a mail to one address. Its HTML part is made from text
// (escaped, web addresses as links). It returns once the mail is in the
// outbox; the worker sends it, retrying when the server fails.
func (a *App) sendMail(ctx context.Context, to, subject, text string) error {
	if _, err := a.Store.EnqueueMail(ctx, to, subject, text, mailer.HTML(subject, text)); err != nil {
		return err
	}
	select {
	case a.mail.wake <- struct{}{}:
	default: // the worker is awake already
	}
	return nil
}

// link is the address of a console page in mail: TT_BASE_URL and path.
func (a *App) link(path string) string {
	return strings.TrimRight(a.Config.BaseURL, "/") + path
}

// mailWorker is the outbox's sender in this instance.
type mailWorker struct {
	wake                  chan struct{}
	sent, failed, givenUp prometheus.Counter
	lastClaimError        time.Time // when a failing outbox was last logged
}

func newMailWorker(reg prometheus.Registerer) *mailWorker {
	w := &mailWorker{
		wake: make(chan struct{}, 1),
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "tt_mail_sent_total",
			Help: "Mails handed to the SMTP server (or, without SMTP_URL, to the log)."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "tt_mail_failed_attempts_total",
			Help: "Attempts to send a mail that failed; each is retried later, up to the last."}),
		givenUp: prometheus.NewCounter(prometheus.CounterOpts{Name: "tt_mail_given_up_total",
			Help: "Mails given up after their last failed attempt; each stays in mail_outbox with its error."}),
	}
	reg.MustRegister(w.sent, w.failed, w.givenUp)
	return w
}

// runMail sends the mail that is due, then again whenever a page queues
// one and every MailPoll, until ctx ends.
func (a *App) runMail(ctx context.Context) {
	t := time.NewTicker(a.MailPoll)
	defer t.Stop()
	for {
		a.sendDueMail(ctx)
		select {
		case <-ctx.Done():
			return
		case <-a.mail.wake:
		case <-t.C:
		}
	}
}

// sendDueMail sends every mail due now, a batch at a time.
func (a *App) sendDueMail(ctx context.Context) {
	for ctx.Err() == nil {
		batch, err := a.Store.ClaimMail(ctx, time.Now(), mailLease, mailBatch)
		if err != nil {
			if ctx.Err() == nil && time.Since(a.mail.lastClaimError) > time.Minute {
				a.mail.lastClaimError = time.Now()
				a.Log.Error("mail outbox: cannot read the mail due; trying again", "err", err.Error())
			}
			return
		}
		if len(batch) == 0 {
			return
		}
		for _, m := range batch {
			a.sendOne(ctx, m)
		}
	}
}

// sendOne makes one attempt at a mail and records how it went.
func (a *App) sendOne(ctx context.Context, m models.Mail) {
	// What was sent is recorded even while the instance stops.
	book, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if ctx.Err() != nil {
		a.release(book, m)
		return
	}
	err := a.Mailer.Send(ctx, mailer.Message{ID: m.ID, To: m.Recipient, Subject: m.Subject,
		Text: m.TextBody, HTML: m.HTMLBody, Date: time.Now()})
	now := time.Now().UTC()
	switch {
	case err == nil:
		a.mail.sent.Inc()
		if err := a.Store.MailSent(book, m.ID, now); err != nil {
			// It goes again once its lease has passed: a duplicate
			// rather than a loss.
			a.Log.Error("mail sent but not marked so; it will be sent again", "mail_id", m.ID, "err", err.Error())
		}
	case ctx.Err() != nil:
		a.release(book, m)
	default:
		a.mail.failed.Inc()
		var next *time.Time
		if m.Attempts <= len(a.MailRetries) {
			at := now.Add(a.MailRetries[m.Attempts-1])
			next = &at
			a.Log.Warn("mail not sent; trying again later", "mail_id", m.ID, "attempt", m.Attempts,
				"next_attempt_at", at.Format(time.RFC3339), "err", err.Error())
		} else {
			a.mail.givenUp.Inc()
			a.Log.Error("mail not sent after its last attempt; given up (kept in mail_outbox)", "mail_id", m.ID,
				"attempts", m.Attempts, "err", err.Error())
		}
		if err := a.Store.MailFailed(book, m.ID, err.Error(), next, now); err != nil {
			a.Log.Error("mail outbox: cannot record a failed attempt", "mail_id", m.ID, "err", err.Error())
		}
	}
}

// release gives back a mail taken while the instance was stopping.
func (a *App) release(ctx context.Context, m models.Mail) {
	if err := a.Store.ReleaseMail(ctx, m.ID); err != nil {
		a.Log.Warn("mail outbox: a mail taken while stopping goes again after its lease", "mail_id", m.ID, "err", err.Error())
	}
}
