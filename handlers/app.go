// Package handlers serves HTTP: the console pages, the gateway under /v1,
// webhooks and operations endpoints. routes.go holds the whole route table.
package handlers

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"ttconsole/internal/mailer"
	"ttconsole/internal/payments"
	"ttconsole/internal/ratelimit"
	"ttconsole/models"
	"ttconsole/upstream"
)

// Config is the part of the product's configuration that handlers use.
type Config struct {
	// TrustedProxies are the peers whose X-Forwarded-For and X-Real-IP
	// headers are believed. Everyone else's client IP is the socket peer.
	TrustedProxies []netip.Prefix
	// SecureCookies forces the Secure flag on cookies even when the
	// request did not arrive over TLS (behind a TLS-terminating proxy).
	SecureCookies bool

	// Billing and payments: the secrets that sign /webhooks/stripe events
	// (several during a rotation). The test provider signs with the first;
	// when empty it uses a secret generated and kept in the database.
	StripeWebhookSecrets []string

	// BaseURL is the console's public address, which links in mail
	// start with (TT_BASE_URL). MailFrom is the sender of mail.
	BaseURL  string
	MailFrom string
}

// The defaults of App's durations, which a zero field takes. The server's
// flags (config.go) offer these same values, so each is written only here.
const (
	DefaultUpstreamTimeout    = time.Minute
	DefaultHoldTTL            = 10 * time.Minute
	DefaultTaskTTL            = 10 * time.Minute
	DefaultTaskPoll           = 500 * time.Millisecond
	DefaultStreamMax          = 30 * time.Minute
	DefaultStreamWriteTimeout = time.Minute
	DefaultBodyTimeout        = 30 * time.Second
	DefaultRedisProbe         = 5 * time.Second
	DefaultBillingPoll        = 2 * time.Second
	DefaultTopupBackoff       = 30 * time.Minute
	DefaultTopupRecheck       = 10 * time.Minute
	DefaultTopupChargeRetry   = 30 * time.Second
)

// App holds the dependencies of every handler. It is built once in main.go.
type App struct {
	Config   Config
	Store    *models.Store
	Log      *slog.Logger
	Cookies  sessions.Store // signs the session cookie, which holds only a session token
	Registry *prometheus.Registry
	// Payments is the billing provider for recharges (Stripe); nil means
	// the test provider, which keeps its state in the database.
	Payments payments.Provider

	// The gateway's upstream model server, and how long calls may take.
	// Each duration left zero takes its Default below.
	Upstream        *upstream.Client
	UpstreamTimeout time.Duration // until the upstream's answer (or first byte of a stream)
	HoldTTL         time.Duration // a hold left open longer is released by the reaper
	TaskTTL         time.Duration // a task still running after this expires, not charged
	TaskPoll        time.Duration // how often running tasks are checked upstream
	// StreamMax is the longest a stream may run (TT_STREAM_MAX);
	// StreamWriteTimeout cuts a client that reads nothing for that long.
	// Both settle on the tokens delivered.
	StreamMax          time.Duration
	StreamWriteTimeout time.Duration
	// BodyTimeout bounds the reading of a whole request body, so a client
	// sending a byte now and then cannot hold a connection.
	BodyTimeout time.Duration

	// RateLimitRedis, when set, holds every API key's rate limit so that
	// all instances share it; nil counts in process. While Redis cannot be
	// reached, calls are counted locally and Redis is pinged every
	// RedisProbe until it answers again.
	RateLimitRedis redis.UniversalClient
	RedisProbe     time.Duration

	// Mailer sends the outbox's mail (SMTP_URL); nil writes each mail
	// into the log instead. The worker looks for mail due every MailPoll
	// besides when a page queues one; MailRetries are the waits after
	// each failed attempt, and after the last a mail is given up.
	Mailer      mailer.Sender
	MailPoll    time.Duration
	MailRetries []time.Duration

	// Clock is the time a key's expiry and an invitation's are checked
	// against; nil is the system's. A test moves it ahead to see them expire.
	Clock func() time.Time

	// Billing's background work (billing_worker.go): every BillingPoll it
	// starts due auto top-ups, makes alerts and mails them and receipts;
	// a negative BillingPoll leaves it to BillingRound calls (tests).
	// After a failed auto top-up the next waits TopupBackoff, doubled for
	// each failure in a row; a charged top-up whose outcome has not
	// arrived after TopupRecheck is asked of the provider.
	// A top-up whose PaymentIntent could not be made is tried again after
	// TopupChargeRetry, doubled for each try.
	BillingPoll      time.Duration
	TopupBackoff     time.Duration
	TopupRecheck     time.Duration
	TopupChargeRetry time.Duration
	// MailObserver, when set, sees every mail billing sends (tests).
	MailObserver func(to, subject, text string)

	metrics      *metrics
	ipFromXFF    echo.IPExtractor // built once from Config.TrustedProxies
	ipFromRealIP echo.IPExtractor
	forms        *formLimits // throttles of the password forms
	keyLimits    *ratelimit.Limiter
	live         liveCalls  // calls whose holds this instance keeps alive
	bodies       *bodyQueue // bodies of calls whose keys keep them, not written yet
	authFailures *authFailures
	mail         *mailWorker
	routePerms   map[string]permission // "METHOD /path" → what the route needs (roles.go)

	background     context.Context // background work: task watchers, hold renewal, streams' settlements tried again
	stopBackground context.CancelFunc
	tasks          sync.WaitGroup // the goroutines of that work, which Close waits for

	billing billingState
}
