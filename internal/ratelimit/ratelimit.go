// Package ratelimit counts events against per-minute limits: in Redis,
// shared by every instance, when one is configured, and in process
// otherwise or while Redis cannot be reached.
package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/throttled/throttled/v2"
	"github.com/throttled/throttled/v2/store/memstore"
)

// Redis timeouts for the shared rate limiter. A call waits at most this
// long for Redis before it is counted locally instead: the limiter must
// never be what makes the gateway slow.
const (
	callTimeout = 250 * time.Millisecond
	logEvery    = time.Minute
)

// NewRedis connects to the Redis at url (redis://[:password@]host:port[/db]
// or rediss:// for TLS) with timeouts short enough for a rate limiter.
// Nothing is dialled until the first command.
func NewRedis(url string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	opt.DialTimeout = callTimeout
	opt.ReadTimeout = callTimeout
	opt.WriteTimeout = callTimeout
	opt.MaxRetries = 0 // a failed count falls back to the local limiter at once
	opt.ContextTimeoutEnabled = true
	return redis.NewClient(opt), nil
}

// Result is one count against a limit, whichever store answered.
type Result struct {
	Limited    bool
	Remaining  int
	ResetAfter time.Duration // until the window is full again
	RetryAfter time.Duration // until the next call is allowed, when limited
}

// Limiter limits each bucket (an API key, a source address) to its events
// per minute with GCRA: a burst of that many, refilled evenly over the
// minute. With Redis the count is shared by every instance (redis_rate's
// atomic script, on Redis's clock). When Redis cannot be reached each
// instance counts locally, the same way, until a probe finds Redis again:
// degraded, but still serving.
type Limiter struct {
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

// New returns a limiter that counts in rdb, or in process when rdb is nil,
// and pings an unreachable Redis every probeEvery once Start has run.
func New(rdb redis.UniversalClient, probeEvery time.Duration, log *slog.Logger, reg prometheus.Registerer) (*Limiter, error) {
	st, err := memstore.NewCtx(1 << 20)
	if err != nil {
		return nil, err
	}
	k := &Limiter{local: st, byRPM: map[int]*throttled.GCRARateLimiterCtx{}, redis: rdb, probeEvery: probeEvery, log: log,
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

// Start checks Redis once and then probes it while it is down, until ctx ends.
func (k *Limiter) Start(ctx context.Context) {
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
func (k *Limiter) probe(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, callTimeout)
	err := k.redis.Ping(pctx).Err()
	cancel()
	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil && time.Since(k.lastLog) >= logEvery {
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
func (k *Limiter) markDown(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.down.Load() {
		return
	}
	k.down.Store(true)
	k.downSince = time.Now()
	k.downGauge.Set(1)
	k.sharedGauge.Set(0)
	if time.Since(k.lastLog) >= logEvery {
		k.lastLog = time.Now()
		k.loggedDown = true
		k.log.Error("rate limits: Redis unreachable; counting per instance until it answers again", "err", err.Error())
	}
}

// State describes where limits are counted, for /readyz: "shared" (Redis),
// "per_instance" (no Redis configured) or "per_instance_fallback" (Redis
// unreachable), with a sentence for people.
func (k *Limiter) State() (string, string) {
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

// Count counts quantity events (0 only reads the state) against the limit
// called bucket, of perMin a minute.
func (k *Limiter) Count(ctx context.Context, bucket string, perMin, quantity int) (Result, error) {
	if k.shared != nil && !k.down.Load() {
		rctx, cancel := context.WithTimeout(ctx, callTimeout)
		res, err := k.shared.AllowN(rctx, "tt:"+bucket, redis_rate.PerMinute(perMin), quantity)
		cancel()
		if err == nil {
			return Result{Limited: quantity > 0 && res.Allowed == 0, Remaining: res.Remaining,
				ResetAfter: res.ResetAfter, RetryAfter: res.RetryAfter}, nil
		}
		if ctx.Err() != nil { // the client left: not Redis's fault
			return Result{}, ctx.Err()
		}
		k.markDown(err)
	}
	if k.shared != nil {
		k.fallbacks.Inc()
	}
	l, err := k.limiter(perMin)
	if err != nil {
		return Result{}, err
	}
	limited, res, err := l.RateLimitCtx(ctx, bucket, quantity)
	if err != nil {
		return Result{}, err
	}
	return Result{Limited: limited, Remaining: res.Remaining, ResetAfter: res.ResetAfter, RetryAfter: res.RetryAfter}, nil
}

func (k *Limiter) limiter(rpm int) (*throttled.GCRARateLimiterCtx, error) {
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
