package components

import (
	"context"
	"strings"
	"time"
)

// zoneKey keys the time zone a page shows its times in: request-scoped,
// chosen by the person with the header's UTC / local switch.
type zoneKey struct{}

// WithZone returns ctx carrying the zone the page shows its times in.
func WithZone(ctx context.Context, loc *time.Location) context.Context {
	return context.WithValue(ctx, zoneKey{}, loc)
}

// ZoneOf is the zone times are shown in: UTC unless the person chose
// their own.
func ZoneOf(ctx context.Context) *time.Location {
	if loc, ok := ctx.Value(zoneKey{}).(*time.Location); ok && loc != nil {
		return loc
	}
	return time.UTC
}

// ZoneName names a zone as the console's labels do: "UTC" or its IANA
// name, "Europe/Paris".
func ZoneName(loc *time.Location) string {
	if loc == nil || loc == time.UTC || loc.String() == "UTC" {
		return "UTC"
	}
	return loc.String()
}

// FormatTime shows t in the page's zone, with the zone: every absolute
// time in the console reads "2026-11-03 15:05:09 CET" or
// "2026-11-03 14:05:09 UTC", never a bare clock.
func FormatTime(ctx context.Context, t time.Time) string {
	return formatIn(t.In(ZoneOf(ctx)), "2006-01-02 15:04:05")
}

// FormatTimeMs is FormatTime to the millisecond, for one request's
// moments.
func FormatTimeMs(ctx context.Context, t time.Time) string {
	return formatIn(t.In(ZoneOf(ctx)), "2006-01-02 15:04:05.000")
}

// TimeTitle is the hover of a time: the full date in the page's zone,
// with the zone's name and offset, and the same moment in UTC when the
// page shows another zone.
func TimeTitle(ctx context.Context, t time.Time) string {
	loc := ZoneOf(ctx)
	lt := t.In(loc)
	s := formatIn(lt, "Monday 2 January 2006, 15:04:05.000")
	if ZoneName(loc) == "UTC" {
		return s
	}
	return s + " (" + loc.String() + ", UTC" + lt.Format("-07:00") + ") · " + t.UTC().Format("2006-01-02 15:04:05.000") + " UTC"
}

// formatIn appends t's zone abbreviation, or its offset from UTC where
// the zone has no abbreviation ("UTC+05:30" rather than a bare "+0530").
func formatIn(t time.Time, layout string) string {
	abbr := t.Format("MST")
	if strings.HasPrefix(abbr, "+") || strings.HasPrefix(abbr, "-") {
		abbr = "UTC" + t.Format("-07:00")
	}
	return t.Format(layout) + " " + abbr
}
