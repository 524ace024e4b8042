// Package mailer hands the console's mail to an SMTP server named by
// SMTP_URL or, without one, to the log, and turns a mail's plain text
// into its HTML part. Queueing and retrying are the outbox's (see
// models.Mail and handlers/mail.go): a Sender tries once.
package mailer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Message is one mail to send.
type Message struct {
	ID      string // the outbox id: the Message-ID stays the same on every attempt
	To      string
	Subject string
	Text    string
	HTML    string
	Date    time.Time
}

// Sender hands one message over, or says why it could not.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// DefaultFrom is the sender when TT_MAIL_FROM is not set.
const DefaultFrom = "TT Console <no-reply@localhost>"

// ParseFrom checks a sender address such as "TT Console <no-reply@example.com>".
func ParseFrom(from string) (*netmail.Address, error) {
	a, err := netmail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("TT_MAIL_FROM must be an address such as %q or no-reply@example.com, not %q", DefaultFrom, from)
	}
	return a, nil
}

// SMTPConfig is where mail goes, as SMTP_URL says.
type SMTPConfig struct {
	Host string
	Port int
	// ImplicitTLS is smtps://: TLS from the first byte. Otherwise the
	// connection turns to TLS with STARTTLS when the server offers it.
	ImplicitTLS bool
	Username    string
	Password    string
}

const urlShape = "smtp://user:pass@host:587 (STARTTLS when the server offers it) or smtps://user:pass@host:465 (TLS)"

// ParseURL reads SMTP_URL. The user and password are optional; the port
// defaults to 587 for smtp:// and 465 for smtps://. The errors never
// repeat the password.
func ParseURL(raw string) (*SMTPConfig, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("SMTP_URL is not a URL: it must look like %s", urlShape)
	}
	shown := u.Redacted()
	cfg := &SMTPConfig{Host: u.Hostname()}
	switch strings.ToLower(u.Scheme) {
	case "smtp":
		cfg.Port = 587
	case "smtps":
		cfg.Port, cfg.ImplicitTLS = 465, true
	default:
		return nil, fmt.Errorf("SMTP_URL %q must start with smtp:// or smtps://: %s", shown, urlShape)
	}
	if cfg.Host == "" {
		return nil, fmt.Errorf("SMTP_URL %q names no host: it must look like %s", shown, urlShape)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("SMTP_URL %q has port %q: a port is a number from 1 to 65535", shown, p)
		}
		cfg.Port = n
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("SMTP_URL %q has a path or options, which mean nothing here: it must look like %s", shown, urlShape)
	}
	if u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
		if cfg.Username == "" && cfg.Password != "" {
			return nil, fmt.Errorf("SMTP_URL %q has a password but no user name", shown)
		}
	}
	return cfg, nil
}

// SMTP sends through an SMTP server, one connection a message.
type SMTP struct {
	Config SMTPConfig
	From   string // "Name <address>"
	// RootCAs verifies the server's certificate; nil is the system's.
	RootCAs *x509.CertPool
	// Timeout bounds connecting and each command; zero is 30 s.
	Timeout time.Duration
}

// Send delivers m: STARTTLS when the server offers it (smtp://) or TLS
// from the start (smtps://), then the credentials, which go-mail sends only
// over TLS unless the mechanism keeps the password secret (CRAM-MD5, SCRAM).
func (s *SMTP) Send(ctx context.Context, m Message) error {
	msg := gomail.NewMsg()
	if err := msg.From(s.From); err != nil {
		return fmt.Errorf("sender %q: %w", s.From, err)
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("recipient %q: %w", m.To, err)
	}
	msg.Subject(m.Subject)
	msg.SetDateWithValue(m.Date)
	if m.ID != "" {
		msg.SetMessageIDWithValue(m.ID + "@" + domainOf(s.From))
	}
	msg.SetUserAgent("TT Console")
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}

	timeout := s.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	opts := []gomail.Option{
		gomail.WithPort(s.Config.Port),
		gomail.WithTimeout(timeout),
		gomail.WithTLSConfig(&tls.Config{ServerName: s.Config.Host, RootCAs: s.RootCAs, MinVersion: tls.VersionTLS12}),
	}
	if s.Config.ImplicitTLS {
		opts = append(opts, gomail.WithSSL())
	} else {
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	}
	if s.Config.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(s.Config.Username), gomail.WithPassword(s.Config.Password))
	}
	c, err := gomail.NewClient(s.Config.Host, opts...)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*timeout)
	defer cancel()
	return c.DialAndSendWithContext(ctx, msg)
}

// domainOf returns the domain of an address, for Message-IDs.
func domainOf(from string) string {
	if a, err := netmail.ParseAddress(from); err == nil {
		if i := strings.LastIndexByte(a.Address, '@'); i >= 0 {
			return a.Address[i+1:]
		}
	}
	return "localhost"
}

// Log writes each message into the log instead of sending it: without
// SMTP_URL, the links a mail carries can still be followed.
type Log struct {
	Log  *slog.Logger
	From string
}

// Send logs m and succeeds.
func (l *Log) Send(ctx context.Context, m Message) error {
	l.Log.InfoContext(ctx, "mail not sent (SMTP_URL is not set); here it is",
		"mail_id", m.ID, "from", l.From, "to", m.To, "subject", m.Subject, "text", m.Text)
	return nil
}
