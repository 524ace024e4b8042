package handlers

import (
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/throttled/throttled/v2"
	"github.com/throttled/throttled/v2/store/memstore"

	"ttconsole/models"
)

// Login throttling: a burst of attempts, then a slow refill, counted per
// email (against guessing one account's password) and per client IP
// (against trying many accounts).
var (
	loginQuotaPerEmail = throttled.RateQuota{MaxRate: throttled.PerMin(2), MaxBurst: 9}
	loginQuotaPerIP    = throttled.RateQuota{MaxRate: throttled.PerMin(10), MaxBurst: 29}
)

func newLimiter(q throttled.RateQuota) (*throttled.GCRARateLimiterCtx, error) {
	st, err := memstore.NewCtx(65536)
	if err != nil {
		return nil, err
	}
	return throttled.NewGCRARateLimiterCtx(st, q)
}

// loginThrottled counts a login attempt and reports how long to wait when
// the email or the IP has used up its attempts.
func (a *App) loginThrottled(c echo.Context, email string) (time.Duration, bool, error) {
	ctx := c.Request().Context()
	limitedIP, resIP, err := a.loginPerIP.RateLimitCtx(ctx, c.RealIP(), 1)
	if err != nil {
		return 0, false, err
	}
	if limitedIP {
		return resIP.RetryAfter, true, nil
	}
	limitedEmail, resEmail, err := a.loginPerEmail.RateLimitCtx(ctx, models.NormalizeEmail(email), 1)
	if err != nil {
		return 0, false, err
	}
	return resEmail.RetryAfter, limitedEmail, nil
}

// keyLimits limits each API key to its requests per minute with GCRA. The
// limiters share one store; a key's rpm picks the quota it is checked with.
type keyLimits struct {
	mu    sync.Mutex
	store throttled.GCRAStoreCtx
	byRPM map[int]*throttled.GCRARateLimiterCtx
}

func newKeyLimits() (*keyLimits, error) {
	st, err := memstore.NewCtx(1 << 20)
	if err != nil {
		return nil, err
	}
	return &keyLimits{store: st, byRPM: map[int]*throttled.GCRARateLimiterCtx{}}, nil
}

func (k *keyLimits) limiter(rpm int) (*throttled.GCRARateLimiterCtx, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l, ok := k.byRPM[rpm]; ok {
		return l, nil
	}
	// A burst of rpm calls, refilled evenly over the minute.
	l, err := throttled.NewGCRARateLimiterCtx(k.store, throttled.RateQuota{MaxRate: throttled.PerMin(rpm), MaxBurst: rpm - 1})
	if err != nil {
		return nil, err
	}
	k.byRPM[rpm] = l
	return l, nil
}
