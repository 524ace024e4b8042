package handlers

import (
	"net/http"
	"net/url"
	"strings"
	"time"
	_ "time/tzdata" // zone names work on hosts without a zoneinfo database

	"github.com/labstack/echo/v4"

	"ttconsole/views/components"
)

// zoneCookie holds the zone the console shows times in: "UTC" or the
// browser's IANA zone, chosen with the header's UTC / local switch.
// Without it (and without JavaScript) times are in UTC.
const zoneCookie = "tt_tz"

// parseZone reads an IANA zone name such as "Europe/Paris" or "UTC". The
// name must look like one before the zone database is asked: "Local" (the
// server's own zone) and file paths are refused.
func parseZone(name string) (*time.Location, bool) {
	if name == "" || len(name) > 64 || name == "Local" || strings.Contains(name, "..") ||
		strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") {
		return nil, false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/_+-", r)) {
			return nil, false
		}
	}
	if strings.EqualFold(name, "UTC") {
		return time.UTC, true
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, false
	}
	return loc, true
}

// zoneOf is the zone this request's pages show times in; a missing or
// unknown zone is UTC.
func zoneOf(c echo.Context) *time.Location {
	ck, err := c.Cookie(zoneCookie)
	if err != nil {
		return time.UTC
	}
	if loc, ok := parseZone(ck.Value); ok {
		return loc
	}
	return time.UTC
}

// showTime is t as this request's pages show it, zone included, for a
// sentence a handler writes.
func showTime(c echo.Context, t time.Time) string {
	return components.FormatTime(components.WithZone(c.Request().Context(), zoneOf(c)), t)
}

// setTimeZone is the header's UTC / local switch: zone is "UTC" or the
// browser's IANA zone, which app.js puts on the Local button. It answers
// with the page it was pressed on.
func (a *App) setTimeZone(c echo.Context) error {
	name := strings.TrimSpace(c.FormValue("zone"))
	if name == "" {
		return echo.NewHTTPError(http.StatusBadRequest,
			"Your browser did not say which time zone it is in, so times stay in UTC. Turn on JavaScript to show them in your own zone.")
	}
	loc, ok := parseZone(name)
	if !ok {
		return echo.NewHTTPError(http.StatusBadRequest,
			"That is not a time zone name: use UTC or a name such as Europe/Paris.")
	}
	c.SetCookie(&http.Cookie{
		Name: zoneCookie, Value: components.ZoneName(loc), Path: "/", MaxAge: 400 * 24 * 3600,
		HttpOnly: true, Secure: a.Config.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
	return c.Redirect(http.StatusSeeOther, localPath(c.FormValue("back")))
}

// localPath is back when it is a path of this console, "/" otherwise: the
// switch never sends anyone to another site.
func localPath(back string) string {
	u, err := url.Parse(back)
	if err != nil || back == "" || !strings.HasPrefix(back, "/") || strings.HasPrefix(back, "//") ||
		strings.HasPrefix(back, "/\\") || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return back
}

// zonedFilters returns the Requests filters of a query string with from
// and to read in the zone the console shows: a date, or a date and time
// without an offset, is that zone's wall clock and becomes an RFC 3339
// time; a date as "to" means the end of that day. Values with an offset,
// and values that are not times (the filter names them), are kept.
func zonedFilters(q url.Values, loc *time.Location) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = v
	}
	for _, name := range []string{"from", "to"} {
		s := strings.TrimSpace(q.Get(name))
		if s == "" {
			continue
		}
		if t, err := time.ParseInLocation("2006-01-02", s, loc); err == nil {
			if name == "to" {
				t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
			}
			out.Set(name, t.Format(time.RFC3339))
			continue
		}
		for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02 15:04:05"} {
			if t, err := time.ParseInLocation(layout, s, loc); err == nil {
				out.Set(name, t.Format(time.RFC3339))
				break
			}
		}
	}
	return out
}
