package handlers

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"ttconsole/internal/ratelimit"
	"ttconsole/views"
)

// rateLimit counts the call against its key and sets the X-RateLimit-*
// headers; over the limit it answers 429 with Retry-After.
func (a *App) rateLimit(c echo.Context, gc *call) error { return a.countCall(c, gc, 1) }

// rateLimitHeaders sets the X-RateLimit-* headers of an authenticated call
// refused before the rate limit, without counting it.
func (a *App) rateLimitHeaders(c echo.Context, gc *call) {
	if err := a.countCall(c, gc, 0); err != nil {
		a.Log.Warn("rate limit headers", "request_id", gc.row.ID, "err", err.Error())
	}
}

func (a *App) countCall(c echo.Context, gc *call, quantity int) error {
	rpm := max(gc.key.RPM, 1)
	res, err := a.keyLimits.Count(c.Request().Context(), "key:"+gc.key.ID, rpm, quantity)
	if err != nil {
		return err
	}
	remaining, resetUnix, retry := setLimitHeaders(c.Response().Header(), rpm, res)
	gc.row.RatelimitLimit, gc.row.RatelimitRemaining, gc.row.RatelimitReset = &rpm, &remaining, &resetUnix
	if !res.Limited {
		return nil
	}
	gc.row.RetryAfter = &retry
	return apiError(TypeRateLimited, fmt.Sprintf("The API key %q is limited to %s. Retry after %d s; raise the key's rate limit in the console if you need more.",
		gc.key.Name, views.RequestsPerMinute(rpm), retry))
}

// setLimitHeaders sets the X-RateLimit-* headers of a count against a limit
// of perMin a minute, and Retry-After when it was limited, and returns
// the values it set (retry is 0 when not limited).
func setLimitHeaders(h http.Header, perMin int, res ratelimit.Result) (remaining int, resetUnix int64, retry int) {
	reset := time.Now().Add(res.ResetAfter)
	resetUnix = reset.Unix()
	if reset.Nanosecond() > 0 {
		resetUnix++ // whole seconds, rounded up: the window is surely full again then
	}
	remaining = max(res.Remaining, 0)
	h.Set("X-RateLimit-Limit", strconv.Itoa(perMin))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(resetUnix, 10))
	if res.Limited {
		retry = max(int(math.Ceil(res.RetryAfter.Seconds())), 1)
		h.Set("Retry-After", strconv.Itoa(retry))
	}
	return remaining, resetUnix, retry
}
