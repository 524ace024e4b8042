package handlers

import (
	"fmt"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"ttconsole/internal/ratelimit"
)

// authFailuresPerMinute is how many calls without a valid key one source
// address may make: a burst of this many, refilled over a minute. Enough
// for a program retrying with a wrong key to see its 401s; far too few to
// try keys or to flood the log.
const authFailuresPerMinute = 30

// authFailures counts the gateway's calls that no key identifies, and
// limits them per source address.
type authFailures struct {
	limits *ratelimit.Limiter // shared through Redis when the keys' limits are
	calls  *prometheus.CounterVec
}

func newAuthFailures(limits *ratelimit.Limiter, reg prometheus.Registerer) *authFailures {
	f := &authFailures{limits: limits, calls: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tt_gateway_unidentified_total",
		Help: "Gateway calls that no API key identifies (missing, malformed or unknown key), by the status answered; they are logged but not stored in the request log.",
	}, []string{"status"})}
	reg.MustRegister(f.calls)
	return f
}

// unidentified answers a call that no key identifies: a missing,
// malformed or unknown key, or an unknown path or an oversized body sent
// without a valid key. No account can see such a call, so it is counted
// and logged (one line, by logRequests) but not stored in the request log.
// It is also a failed authentication of its source address: past
// authFailuresPerMinute the answer is 429 instead.
//
// Only failures are counted, after the key was checked as usual: a valid
// key (or a disabled, revoked or expired one, which identifies its
// account) is never refused for what others did from the same address,
// and the order of checks for it is unchanged.
func (a *App) unidentified(c echo.Context, status int, err error) error {
	if err != nil {
		bucket := failureBucket(c.RealIP())
		res, cerr := a.authFailures.limits.Count(c.Request().Context(), "authfail:"+bucket, authFailuresPerMinute, 1)
		switch {
		case cerr != nil:
			a.Log.Warn("count failed authentication", "request_id", RequestID(c), "err", cerr.Error())
		case res.Limited:
			_, _, retry := setLimitHeaders(c.Response().Header(), authFailuresPerMinute, res)
			status = http.StatusTooManyRequests
			err = apiError(TypeRateLimited, fmt.Sprintf("Too many calls without a valid API key from %s (%d a minute). Retry after %d s, with the whole key in the Authorization header: 'Bearer sk-tt-…'.",
				bucket, authFailuresPerMinute, retry))
		}
	}
	a.authFailures.calls.WithLabelValues(strconv.Itoa(status)).Inc()
	return err
}

// failureBucket is what failed authentications are counted by: an IPv4
// address, or the /64 of an IPv6 address, which one subscriber holds
// whole and could otherwise walk through.
func failureBucket(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	addr = addr.Unmap()
	if addr.Is4() {
		return addr.String()
	}
	p, _ := addr.Prefix(64)
	return p.String()
}
