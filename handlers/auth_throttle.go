package handlers

import (
	"context"
	"math"
	"time"

	"github.com/labstack/echo/v4"
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
//     a session is not a licence to guess the current password;
//   - mail asked for (a reset link, a confirmation link again), per client
//     address, and per email or per user: each sends a mail to someone.
var (
	loginQuotaPerIP      = throttled.RateQuota{MaxRate: throttled.PerMin(10), MaxBurst: 29}
	loginQuotaPerEmail   = throttled.RateQuota{MaxRate: throttled.PerMin(2), MaxBurst: 9}
	loginQuotaPerDevice  = throttled.RateQuota{MaxRate: throttled.PerMin(2), MaxBurst: 9}
	signupQuotaPerIP     = throttled.RateQuota{MaxRate: throttled.PerHour(20), MaxBurst: 9}
	passwordQuotaPerUser = throttled.RateQuota{MaxRate: throttled.PerMin(2), MaxBurst: 9}
	mailQuotaPerIP       = throttled.RateQuota{MaxRate: throttled.PerMin(2), MaxBurst: 9}
	resetQuotaPerEmail   = throttled.RateQuota{MaxRate: throttled.PerHour(6), MaxBurst: 2}
	verifyQuotaPerUser   = throttled.RateQuota{MaxRate: throttled.PerHour(6), MaxBurst: 2}
)

type formLimits struct {
	loginPerIP, loginPerEmail, loginPerDevice, signupPerIP, passwordPerUser *throttled.GCRARateLimiterCtx
	mailPerIP, resetPerEmail, verifyPerUser                                 *throttled.GCRARateLimiterCtx
}

func newFormLimits() (*formLimits, error) {
	var f formLimits
	for _, l := range []struct {
		dst **throttled.GCRARateLimiterCtx
		q   throttled.RateQuota
	}{
		{&f.loginPerIP, loginQuotaPerIP}, {&f.loginPerEmail, loginQuotaPerEmail}, {&f.loginPerDevice, loginQuotaPerDevice},
		{&f.signupPerIP, signupQuotaPerIP}, {&f.passwordPerUser, passwordQuotaPerUser},
		{&f.mailPerIP, mailQuotaPerIP}, {&f.resetPerEmail, resetQuotaPerEmail}, {&f.verifyPerUser, verifyQuotaPerUser},
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
