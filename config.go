package main

import (
	"encoding/hex"
	"flag"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"ttconsole/handlers"
	"ttconsole/internal/mailer"
	"ttconsole/internal/payments"
)

// Config is everything the product reads from flags and the environment,
// read once at start-up.
type Config struct {
	Addr           string
	DBPath         string
	DatabaseURL    string
	UpstreamURL    string
	RedisURL       string
	TrustedProxies []netip.Prefix
	SessionKey     []byte // signs session cookies; generated and kept in the database when empty
	SecureCookies  bool
	LogFormat      string // json or text

	UpstreamTimeout time.Duration // wait for an upstream answer (or a stream's first byte)
	HoldTTL         time.Duration // a hold still open after this is released by the reaper
	TaskTTL         time.Duration // a task still running after this expires, not charged
	StreamMax       time.Duration // the longest a stream may run
	BodyTimeout     time.Duration // to read a whole request body

	// RetentionDays keeps the request log (and each request's billing
	// timeline) this many days; 0 keeps it forever. The ledger is kept.
	RetentionDays int

	// Billing and payments: STRIPE_SECRET_KEY selects the Stripe provider;
	// STRIPE_WEBHOOK_SECRET (comma-separated during a rotation) verifies
	// its webhook, or signs the test provider's events when Stripe is off.
	StripeSecretKey      string
	StripeWebhookSecrets []string
	// Payments is who takes recharges: payments.ProviderStripe, or
	// payments.ProviderTest, the built-in provider whose recharges are
	// free. TT_PAYMENTS asks for one; see choosePayments for the default.
	Payments string

	// Mail: SMTPURL (smtp:// or smtps://) names the server mail goes
	// through, read into SMTP; empty writes mail into the log. MailFrom is
	// the sender; BaseURL starts the links in mail (empty: the listen
	// address, once known).
	SMTPURL  string
	SMTP     *mailer.SMTPConfig
	MailFrom string
	BaseURL  string
}

// configFlags registers the flags shared by every subcommand that opens the
// database, with defaults taken from the environment.
func configFlags(fs *flag.FlagSet, cfg *Config) {
	fs.StringVar(&cfg.DBPath, "db", envOr("TT_DB", "./ttconsole.db"), "SQLite database file (TT_DB); ignored when DATABASE_URL is set")
	cfg.DatabaseURL = os.Getenv("DATABASE_URL")
	cfg.LogFormat = envOr("TT_LOG_FORMAT", "json")
}

// serveFlags registers the flags of the server.
func serveFlags(fs *flag.FlagSet, cfg *Config) {
	configFlags(fs, cfg)
	fs.StringVar(&cfg.Addr, "addr", envOr("TT_ADDR", "127.0.0.1:8080"), "listen address (TT_ADDR); :8080 serves on every interface")
	cfg.UpstreamURL = os.Getenv("UPSTREAM_URL")
	cfg.RedisURL = os.Getenv("REDIS_URL")
	cfg.Payments = strings.TrimSpace(os.Getenv("TT_PAYMENTS"))
	cfg.SMTPURL = strings.TrimSpace(os.Getenv("SMTP_URL"))
	cfg.MailFrom = strings.TrimSpace(os.Getenv("TT_MAIL_FROM"))
	cfg.BaseURL = strings.TrimSpace(os.Getenv("TT_BASE_URL"))
	fs.DurationVar(&cfg.UpstreamTimeout, "upstream-timeout", envDuration("TT_UPSTREAM_TIMEOUT", handlers.DefaultUpstreamTimeout),
		"how long to wait for the upstream's answer (TT_UPSTREAM_TIMEOUT)")
	fs.DurationVar(&cfg.HoldTTL, "hold-ttl", envDuration("TT_HOLD_TTL", handlers.DefaultHoldTTL),
		"release holds of calls still running after this long (TT_HOLD_TTL)")
	fs.DurationVar(&cfg.TaskTTL, "task-ttl", envDuration("TT_TASK_TTL", handlers.DefaultTaskTTL),
		"expire async tasks still running after this long, not charged (TT_TASK_TTL)")
	fs.DurationVar(&cfg.StreamMax, "stream-max", envDuration("TT_STREAM_MAX", handlers.DefaultStreamMax),
		"stop a stream that runs longer than this, charged for the tokens delivered (TT_STREAM_MAX)")
	fs.DurationVar(&cfg.BodyTimeout, "body-timeout", envDuration("TT_BODY_TIMEOUT", handlers.DefaultBodyTimeout),
		"the time a client has to send a whole request body (TT_BODY_TIMEOUT)")
	fs.IntVar(&cfg.RetentionDays, "retention-days", envInt("TT_RETENTION_DAYS", 0),
		"delete request log rows older than this many days; 0 keeps them forever (TT_RETENTION_DAYS)")
}

// envInt reads a whole number from the environment; a value that does not
// parse is reported by finish.
func envInt(name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return -1
	}
	return n
}

// envDuration reads a duration such as 90s from the environment; a value
// that does not parse is reported by finish.
func envDuration(name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return -1
	}
	return d
}

// finish validates and completes what the flags and environment gave.
func (cfg *Config) finish() error {
	var err error
	if cfg.TrustedProxies, err = parsePrefixes(os.Getenv("TT_TRUSTED_PROXIES")); err != nil {
		return fmt.Errorf("TT_TRUSTED_PROXIES: %w", err)
	}
	if k := os.Getenv("TT_SESSION_KEY"); k != "" {
		b, err := hex.DecodeString(k)
		if err != nil || len(b) < 32 {
			return fmt.Errorf("TT_SESSION_KEY must be at least 32 bytes, hex-encoded (64 hex characters)")
		}
		cfg.SessionKey = b
	}
	cfg.SecureCookies = os.Getenv("TT_SECURE_COOKIES") == "1" || os.Getenv("TT_SECURE_COOKIES") == "true"
	cfg.StripeSecretKey = strings.TrimSpace(os.Getenv("STRIPE_SECRET_KEY"))
	for _, s := range strings.Split(os.Getenv("STRIPE_WEBHOOK_SECRET"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.StripeWebhookSecrets = append(cfg.StripeWebhookSecrets, s)
		}
	}
	if cfg.StripeSecretKey != "" && len(cfg.StripeWebhookSecrets) == 0 {
		return fmt.Errorf("STRIPE_WEBHOOK_SECRET is required with STRIPE_SECRET_KEY: without it no Stripe payment could be verified and credited")
	}
	if err := cfg.choosePayments(); err != nil {
		return err
	}
	if cfg.UpstreamURL != "" {
		u, err := url.Parse(cfg.UpstreamURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("UPSTREAM_URL must be an http(s) URL such as http://127.0.0.1:9000, not %q", cfg.UpstreamURL)
		}
	}
	if cfg.UpstreamTimeout < 0 || cfg.HoldTTL < 0 || cfg.TaskTTL < 0 || cfg.StreamMax < 0 || cfg.BodyTimeout < 0 {
		return fmt.Errorf("TT_UPSTREAM_TIMEOUT, TT_HOLD_TTL, TT_TASK_TTL, TT_STREAM_MAX and TT_BODY_TIMEOUT must be durations such as 90s or 10m")
	}
	if cfg.HoldTTL > 0 && cfg.HoldTTL <= cfg.UpstreamTimeout {
		return fmt.Errorf("the hold TTL (%s) must be longer than the upstream timeout (%s)", cfg.HoldTTL, cfg.UpstreamTimeout)
	}
	if cfg.RetentionDays < 0 {
		return fmt.Errorf("TT_RETENTION_DAYS must be a whole number of days (0 keeps the request log forever)")
	}
	if cfg.RedisURL != "" {
		u, err := url.Parse(cfg.RedisURL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			return fmt.Errorf("REDIS_URL must be a redis:// or rediss:// URL such as redis://127.0.0.1:6379/0")
		}
	}
	if err := cfg.finishMail(); err != nil {
		return err
	}
	if cfg.LogFormat != "json" && cfg.LogFormat != "text" {
		return fmt.Errorf("TT_LOG_FORMAT must be json or text, not %q", cfg.LogFormat)
	}
	return nil
}

// finishMail checks the mail settings: the SMTP server's URL, the sender,
// and the base of links.
func (cfg *Config) finishMail() error {
	if cfg.SMTPURL != "" {
		var err error
		if cfg.SMTP, err = mailer.ParseURL(cfg.SMTPURL); err != nil {
			return err
		}
	}
	if cfg.MailFrom != "" {
		if _, err := mailer.ParseFrom(cfg.MailFrom); err != nil {
			return err
		}
	}
	if cfg.BaseURL != "" {
		u, err := url.Parse(cfg.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("TT_BASE_URL must be the console's public address, such as https://console.example.com, not %q", cfg.BaseURL)
		}
		cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	}
	return nil
}

// choosePayments decides who takes recharges. The test provider credits
// any amount for free, so it runs by default only where nothing real can
// be bought with it (the built-in simulated upstream), and otherwise only
// when TT_PAYMENTS=test asks for it; a real upstream without Stripe is
// refused rather than given away.
func (cfg *Config) choosePayments() error {
	switch cfg.Payments {
	case "":
		switch {
		case cfg.StripeSecretKey != "":
			cfg.Payments = payments.ProviderStripe
		case cfg.UpstreamURL == "":
			cfg.Payments = payments.ProviderTest
		default:
			return fmt.Errorf("UPSTREAM_URL is set but STRIPE_SECRET_KEY is not: recharges would go through the test payment provider, " +
				"which credits any amount for free, and be spent on the real upstream. Set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET " +
				"to take real payments, or TT_PAYMENTS=test to run the test provider on purpose")
		}
	case payments.ProviderStripe:
		if cfg.StripeSecretKey == "" {
			return fmt.Errorf("TT_PAYMENTS=stripe needs STRIPE_SECRET_KEY (and STRIPE_WEBHOOK_SECRET)")
		}
	case payments.ProviderTest:
		if cfg.StripeSecretKey != "" {
			return fmt.Errorf("TT_PAYMENTS=test and STRIPE_SECRET_KEY are both set: unset STRIPE_SECRET_KEY to run the test provider, or TT_PAYMENTS to take payments through Stripe")
		}
	default:
		return fmt.Errorf("TT_PAYMENTS must be test or stripe, not %q", cfg.Payments)
	}
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// parsePrefixes reads a comma-separated list of addresses and CIDRs.
func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "/") {
			a, err := netip.ParseAddr(part)
			if err != nil {
				return nil, fmt.Errorf("%q is not an IP address or CIDR", part)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or CIDR", part)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
