package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
	"ttconsole/views"
)

// The Requests page's count of matching requests stops at maxCounted
// ("10,000+") and gives up after countBudget, so its cost has a ceiling.
// A filter that few rows match may still read many (a rare status code
// checks each row of its class), which is why the page fetches the count
// after it renders, as it does the chart, and never waits for it.
const (
	maxCounted  = 10_000
	countBudget = 3 * time.Second
)

// requestsCount answers the Requests page's count of the requests that
// match the filters in the query, as a sentence.
func (a *App) requestsCount(c echo.Context) error {
	f, err := models.ParseRequestFilter(c.QueryParams())
	if err != nil {
		return c.String(http.StatusBadRequest, "The filters are not valid.")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), countBudget)
	defer cancel()
	n, more, err := a.Store.CountRequests(ctx, currentAccount(c), f, maxCounted)
	if err != nil && ctx.Err() != nil && c.Request().Context().Err() == nil {
		return c.String(http.StatusOK, "Too many to count quickly: narrow the filters or the time range for a count.")
	}
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "private, max-age=30")
	return c.String(http.StatusOK, matchCount(n, more, !f.Empty()))
}

// lookUpRequest finds the request that the lookup box's text names: a
// request id, or a task id, whose request is the POST /v1/tasks call that
// created it. It returns "" when the account has no such request.
func (a *App) lookUpRequest(c echo.Context, pasted string) (string, error) {
	ctx := c.Request().Context()
	acct := currentAccount(c)
	id := requestIDFromPaste(pasted)
	var err error
	switch {
	case models.LooksLikeRequestID(id):
		_, err = a.Store.RequestOf(ctx, acct, id)
	case models.LooksLikeTaskID(id):
		var t *models.Task
		if t, err = a.Store.TaskOf(ctx, acct, id); err == nil {
			id = t.RequestID
		}
	default:
		return "", nil
	}
	switch {
	case err == nil:
		return id, nil
	case models.ErrorCode(err) == models.ENOTFOUND:
		return "", nil
	}
	return "", err
}

// matchCount says how many requests the list holds: "1,234 requests",
// "10,000+ matching requests".
func matchCount(n int64, more, filtered bool) string {
	s := groupDigits(n)
	if more {
		s += "+"
	}
	if filtered {
		s += " matching"
	}
	if n == 1 && !more {
		return s + " request"
	}
	return s + " requests"
}

func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// pickerTime is a filter's bound as a datetime-local input shows it, in
// the zone the page shows times in (zonedFilters reads it back in that
// zone): "2026-11-25T14:00", with seconds only when it has some.
func pickerTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	t = t.In(loc)
	if t.Second() != 0 || t.Nanosecond() != 0 {
		return t.Format("2006-01-02T15:04:05")
	}
	return t.Format("2006-01-02T15:04")
}

// rangePresets are the time range shortcuts: each keeps the other
// filters and sets from to that long before now, to the minute, with no
// end.
func rangePresets(f models.RequestFilter, now time.Time) []views.Option {
	now = now.UTC().Truncate(time.Minute)
	var out []views.Option
	for _, p := range []struct {
		label string
		d     time.Duration
	}{{"hour", time.Hour}, {"24 hours", 24 * time.Hour}, {"7 days", 7 * 24 * time.Hour}, {"30 days", 30 * 24 * time.Hour}} {
		v := f.Values()
		v.Del("to")
		v.Set("from", now.Add(-p.d).Format(time.RFC3339))
		out = append(out, views.Option{Value: "/requests?" + v.Encode(), Label: p.label})
	}
	return out
}

// keyRequestsURL is the Requests page filtered to one key.
func keyRequestsURL(keyID string) string { return "/requests?" + url.Values{"key": {keyID}}.Encode() }
