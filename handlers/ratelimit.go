package handlers

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/throttled/throttled/v2"
	"github.com/throttled/throttled/v2/store/memstore"

	"ttconsole/models"
)

// Throttles of the console's password forms. Each is a burst, then a slow
// refill, and counts every attempt before it is judged, so concurrent
// guesses cannot slip past a limit that only failures would reach.
//
//   - login, per client address: against trying many accounts;
//   - login, per email, from browsers that have never signed in to that
//     account: against guessing one account's password;
//   - login, per device cookie, from a browser that has (OWASP's device
//     cookies): strangers' guesses use up the email's attempts, not the
//     owner's;
//   - sign-up, per client address: each one costs a hash and makes an account;
//   - password change, per user and per client address (shared with login):
//     a session is not a licence to guess the current password.
var (
	loginQuotaPerIP      = throttled.RateQuota{MaxRate: throttled.PerMin(10), MaxBurst: 29}
	loginQuotaPerEmail   = throttled.RateQuota{MaxRate: throttled.PerMin(2), MaxBurst: 9}
	loginQuotaPerDevice  = throttled.RateQuota{MaxRate: throttled.PerMin(2), MaxBurst: 9}
	signupQuotaPerIP     = throttled.RateQuota{MaxRate: throttled.PerHour(20), MaxBurst: 9}
	passwordQuotaPerUser = throttled.RateQuota{MaxRate: throttled.PerMin(2), MaxBurst: 9}
)

type formLimits struct {
	loginPerIP, loginPerEmail, loginPerDevice, signupPerIP, passwordPerUser *throttled.GCRARateLimiterCtx
}

func newFormLimits() (*formLimits, error) {
	var f formLimits
	for _, l := range []struct {
		dst **throttled.GCRARateLimiterCtx
		q   throttled.RateQuota
	}{
		{&f.loginPerIP, loginQuotaPerIP}, {&f.loginPerEmail, loginQuotaPerEmail}, {&f.loginPerDevice, loginQuotaPerDevice},
		{&f.signupPerIP, signupQuotaPerIP}, {&f.passwordPerUser, passwordQuotaPerUser},
	} {
		st, err := memstore.NewCtx(65536)
		if err != nil {
			return nil, err
		}
		if *l.dst, err = throttled.NewGCRARateLimiterCtx(st, l.q); err != nil {
			return nil, err
		}
	}
	return &f, nil
}

// counted is one limit an attempt counts against: a limiter and the key
// (address, email, device or user) it counts under.
type counted struct {
	limiter *throttled.GCRARateLimiterCtx
	key     string
}

// countAttempt counts one attempt against each limit in turn and reports,
// at the first that is used up, how long to wait.
func countAttempt(ctx context.Context, limits ...counted) (time.Duration, bool, error) {
	for _, l := range limits {
		limited, res, err := l.limiter.RateLimitCtx(ctx, l.key, 1)
		if err != nil {
			return 0, false, err
		}
		if limited {
			return res.RetryAfter, true, nil
		}
	}
	return 0, false, nil
}

// loginThrottled counts a login attempt: against the client's address,
// then against this browser's device cookie when it names the account of
// email, or else against the email.
func (a *App) loginThrottled(c echo.Context, email string) (time.Duration, bool, error) {
	ctx := c.Request().Context()
	if wait, limited, err := countAttempt(ctx, counted{a.forms.loginPerIP, c.RealIP()}); err != nil || limited {
		return wait, limited, err
	}
	device, err := a.trustedDevice(c, email)
	if err != nil {
		return 0, false, err
	}
	if device != "" {
		return countAttempt(ctx, counted{a.forms.loginPerDevice, device})
	}
	return countAttempt(ctx, counted{a.forms.loginPerEmail, models.NormalizeEmail(email)})
}

// waitSeconds sets Retry-After for a throttled form and returns the wait
// in whole seconds, rounded up, for its message.
func waitSeconds(c echo.Context, wait time.Duration) int {
	secs := max(int(math.Ceil(wait.Seconds())), 1)
	c.Response().Header().Set("Retry-After", itoa(secs))
	return secs
}

// Redis timeouts for the shared rate limiter. A call waits at most this
// long for Redis before it is counted locally instead: the limiter must
// never be what makes the gateway slow.
const (
	redisCallTimeout = 250 * time.Millisecond
	redisLogEvery    = time.Minute
)

// NewRateLimitRedis connects to the Redis at url (redis://[:password@]host:port[/db]
// or rediss:// for TLS) with timeouts short enough for a rate limiter.
// Nothing is dialled until the first command.
func NewRateLimitRedis(url string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	opt.DialTimeout = redisCallTimeout
	opt.ReadTimeout = redisCallTimeout
	opt.WriteTimeout = redisCallTimeout
	opt.MaxRetries = 0 // a failed count falls back to the local limiter at once
	opt.ContextTimeoutEnabled = true
	return redis.NewClient(opt), nil
}

// limitResult is one count of a key's calls, whichever store answered.
type limitResult struct {
	limited    bool
	remaining  int
	resetAfter time.Duration // until the key's window is full again
	retryAfter time.Duration // until the next call is allowed, when limited
}

// keyLimits limits each API key to its requests per minute with GCRA: a
// burst of rpm calls, refilled evenly over the minute. With Redis the count
// is shared by every instance (redis_rate's atomic script, on Redis's
// clock). When Redis cannot be reached each instance counts locally, the
// same way, until a probe finds Redis again: degraded, but still serving.
type keyLimits struct {
	mu    sync.Mutex
	local throttled.GCRAStoreCtx
	byRPM map[int]*throttled.GCRARateLimiterCtx

	redis      redis.UniversalClient // nil: limits are per instance by design
	shared     *redis_rate.Limiter
	probeEvery time.Duration
	log        *slog.Logger

	down       atomic.Bool // Redis is configured but unreachable
	downSince  time.Time   // under mu
	lastLog    time.Time   // under mu: the last "unreachable" line, at most one a minute
	loggedDown bool        // under mu: this outage was logged, so its end is too

	sharedGauge prometheus.Gauge
	downGauge   prometheus.Gauge
	fallbacks   prometheus.Counter
}

func newKeyLimits(rdb redis.UniversalClient, probeEvery time.Duration, log *slog.Logger, reg prometheus.Registerer) (*keyLimits, error) {
	st, err := memstore.NewCtx(1 << 20)
	if err != nil {
		return nil, err
	}
	k := &keyLimits{local: st, byRPM: map[int]*throttled.GCRARateLimiterCtx{}, redis: rdb, probeEvery: probeEvery, log: log,
		sharedGauge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tt_ratelimit_shared",
			Help: "1 when this instance counts API key rate limits in Redis, shared by every instance; 0 when it counts them locally."}),
		downGauge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tt_ratelimit_redis_unreachable",
			Help: "1 while REDIS_URL is set but Redis cannot be reached, so rate limits are counted per instance."}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{Name: "tt_ratelimit_local_fallback_total",
			Help: "Calls counted by the local limiter because Redis could not be reached."}),
	}
	reg.MustRegister(k.sharedGauge, k.downGauge, k.fallbacks)
	if rdb != nil {
		k.shared = redis_rate.NewLimiter(rdb)
		k.sharedGauge.Set(1)
	}
	return k, nil
}

// start checks Redis once and then probes it while it is down, until ctx ends.
func (k *keyLimits) start(ctx context.Context) {
	if k.redis == nil {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	err := k.redis.Ping(pctx).Err()
	cancel()
	if err != nil {
		k.markDown(err)
	}
	go func() {
		t := time.NewTicker(k.probeEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if k.down.Load() {
				k.probe(ctx)
			}
		}
	}()
}

// probe pings Redis and, when it answers, shares limits again.
func (k *keyLimits) probe(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, redisCallTimeout)
	err := k.redis.Ping(pctx).Err()
	cancel()
	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil && time.Since(k.lastLog) >= redisLogEvery {
			k.lastLog = time.Now()
			k.loggedDown = true
			k.log.Warn("rate limits: Redis still unreachable; counting per instance",
				"since", k.downSince.UTC().Format(time.RFC3339), "err", err.Error())
		}
		return
	}
	k.down.Store(false)
	k.downGauge.Set(0)
	k.sharedGauge.Set(1)
	if !k.loggedDown {
		return
	}
	k.loggedDown = false
	k.log.Info("rate limits: Redis reachable again; limits are shared by every instance",
		"down_for", time.Since(k.downSince).Round(time.Second).String())
}

// markDown switches to the local limiter until a probe finds Redis again.
func (k *keyLimits) markDown(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.down.Load() {
		return
	}
	k.down.Store(true)
	k.downSince = time.Now()
	k.downGauge.Set(1)
	k.sharedGauge.Set(0)
	if time.Since(k.lastLog) >= redisLogEvery {
		k.lastLog = time.Now()
		k.loggedDown = true
		k.log.Error("rate limits: Redis unreachable; counting per instance until it answers again", "err", err.Error())
	}
}

// state describes where limits are counted, for /readyz: "shared" (Redis),
// "per_instance" (no Redis configured) or "per_instance_fallback" (Redis
// unreachable), with a sentence for people.
func (k *keyLimits) state() (string, string) {
	switch {
	case k.redis == nil:
		return "per_instance", "REDIS_URL is not set: each instance counts its own calls."
	case k.down.Load():
		k.mu.Lock()
		since := k.downSince
		k.mu.Unlock()
		return "per_instance_fallback", fmt.Sprintf("Redis unreachable since %s: each instance counts its own calls until it answers again.",
			since.UTC().Format(time.RFC3339))
	}
	return "shared", "Counted in Redis, shared by every instance."
}

// count counts quantity calls (0 only reads the state) of a key allowed
// rpm per minute.
func (k *keyLimits) count(ctx context.Context, keyID string, rpm, quantity int) (limitResult, error) {
	return k.countIn(ctx, "key:"+keyID, rpm, quantity)
}

// countIn counts quantity events against the limit called bucket, of
// perMin a minute, in the same stores and with the same fallback as the
// keys' limits.
func (k *keyLimits) countIn(ctx context.Context, bucket string, perMin, quantity int) (limitResult, error) {
	if k.shared != nil && !k.down.Load() {
		rctx, cancel := context.WithTimeout(ctx, redisCallTimeout)
		res, err := k.shared.AllowN(rctx, "tt:"+bucket, redis_rate.PerMinute(perMin), quantity)
		cancel()
		if err == nil {
			return limitResult{limited: quantity > 0 && res.Allowed == 0, remaining: res.Remaining,
				resetAfter: res.ResetAfter, retryAfter: res.RetryAfter}, nil
		}
		if ctx.Err() != nil { // the client left: not Redis's fault
			return limitResult{}, ctx.Err()
		}
		k.markDown(err)
	}
	if k.shared != nil {
		k.fallbacks.Inc()
	}
	l, err := k.limiter(perMin)
	if err != nil {
		return limitResult{}, err
	}
	limited, res, err := l.RateLimitCtx(ctx, bucket, quantity)
	if err != nil {
		return limitResult{}, err
	}
	return limitResult{limited: limited, remaining: res.Remaining, resetAfter: res.ResetAfter, retryAfter: res.RetryAfter}, nil
}

func (k *keyLimits) limiter(rpm int) (*throttled.GCRARateLimiterCtx, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l, ok := k.byRPM[rpm]; ok {
		return l, nil
	}
	// A burst of rpm calls, refilled evenly over the minute: the same
	// quota as redis_rate.PerMinute(rpm).
	l, err := throttled.NewGCRARateLimiterCtx(k.local, throttled.RateQuota{MaxRate: throttled.PerMin(rpm), MaxBurst: rpm - 1})
	if err != nil {
		return nil, err
	}
	k.byRPM[rpm] = l
	return l, nil
}
