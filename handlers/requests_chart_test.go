package handlers

import (
	"testing"
	"time"

	"ttconsole/models"
)

// TestChartBuckets checks the status chart's buckets: on the clock, sized
// to the range, never one bar for a whole short range nor odd minutes for
// a day.
func TestChartBuckets(t *testing.T) {
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		name     string
		from, to string
		step     time.Duration
		start    string
		n        int
	}{
		{"30 minutes", "2026-11-25T14:03:20Z", "2026-11-25T14:33:20Z", time.Minute, "2026-11-25T14:03:00Z", 31},
		{"the last hour", "2026-11-25T13:37:10Z", "2026-11-25T14:37:10Z", time.Minute, "2026-11-25T13:37:00Z", 61},
		{"3 hours", "2026-11-25T11:00:00Z", "2026-11-25T14:00:00Z", 5 * time.Minute, "2026-11-25T11:00:00Z", 36},
		{"12 hours", "2026-11-25T02:10:00Z", "2026-11-25T14:10:00Z", 15 * time.Minute, "2026-11-25T02:00:00Z", 49},
		{"one day, a date", "2026-11-25T00:00:00Z", "2026-11-26T00:00:00Z", time.Hour, "2026-11-25T00:00:00Z", 24},
		{"the last 24 hours", "2026-11-24T14:37:00Z", "2026-11-25T14:37:00Z", time.Hour, "2026-11-24T14:00:00Z", 25},
		{"7 days", "2026-11-18T14:37:00Z", "2026-11-25T14:37:00Z", 6 * time.Hour, "2026-11-18T12:00:00Z", 29},
		{"30 days", "2026-10-26T14:37:00Z", "2026-11-25T14:37:00Z", 24 * time.Hour, "2026-10-26T00:00:00Z", 31},
		{"a year", "2025-11-25T00:00:00Z", "2026-11-25T00:00:00Z", 7 * 24 * time.Hour, "2025-11-24T00:00:00Z", 53},
	}
	for _, c := range cases {
		from, to := at(c.from), at(c.to)
		start, step, n := chartBuckets(from, to)
		if step != c.step || !start.Equal(at(c.start)) || n != c.n {
			t.Errorf("%s: %d buckets of %v from %s, want %d of %v from %s", c.name, n, step, start.Format(time.RFC3339),
				c.n, c.step, c.start)
		}
		if start.After(from) || start.Add(time.Duration(n)*step).Before(to) {
			t.Errorf("%s: buckets %s + %d×%v do not cover the range", c.name, start, n, step)
		}
		if n > chartMaxBars {
			t.Errorf("%s: %d bars", c.name, n)
		}
		if step < 24*time.Hour && start.Truncate(step) != start {
			t.Errorf("%s: buckets start at %s, off the clock", c.name, start)
		}
		if step == 7*24*time.Hour && start.Weekday() != time.Monday {
			t.Errorf("%s: weeks start on %s", c.name, start.Weekday())
		}
		// No bar may take most of the chart: the one bar over 80%.
		if n < 10 && to.Sub(from) > 10*time.Minute {
			t.Errorf("%s: only %d bars", c.name, n)
		}
	}

	// Ten years: whole days, still no more than the chart holds.
	start, step, n := chartBuckets(at("2016-01-01T00:00:00Z"), at("2026-01-01T00:00:00Z"))
	if n > chartMaxBars || step%(24*time.Hour) != 0 || start.Truncate(24*time.Hour) != start {
		t.Errorf("ten years: %d buckets of %v from %s", n, step, start)
	}
}

// TestChartLabelsAndTitles checks what a person reads on the chart: axis
// labels on round times, at most six, and hover titles that give the
// period with its zone and the counts.
func TestChartLabelsAndTitles(t *testing.T) {
	for _, c := range []struct {
		step  time.Duration
		n     int
		every int
	}{
		{time.Minute, 31, 5}, {time.Minute, 61, 10}, {5 * time.Minute, 36, 6}, {time.Hour, 25, 4},
		{6 * time.Hour, 29, 4}, {24 * time.Hour, 31, 7}, {time.Hour, 5, 1},
	} {
		if got := chartLabelEvery(c.step, c.n); got != c.every {
			t.Errorf("%v × %d: a label every %d buckets, want %d", c.step, c.n, got, c.every)
		}
		if got := chartLabelEvery(c.step, c.n); (c.n+got-1)/got > chartMaxLabels {
			t.Errorf("%v × %d: %d labels", c.step, c.n, (c.n+got-1)/got)
		}
	}

	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		at    time.Time
		every time.Duration
		want  bool
	}{
		{day.Add(14 * time.Hour), 4 * time.Hour, false}, {day.Add(16 * time.Hour), 4 * time.Hour, true},
		{day.Add(14*time.Hour + 50*time.Minute), 10 * time.Minute, true}, {day.Add(14*time.Hour + 55*time.Minute), 10 * time.Minute, false},
		{day, 7 * 24 * time.Hour, false}, {day.AddDate(0, 0, -2), 7 * 24 * time.Hour, true}, // Monday the 23rd
	} {
		if got := onLabelTime(c.at, c.every); got != c.want {
			t.Errorf("a label at %s with labels every %v: %v, want %v", c.at.Format(time.RFC3339), c.every, got, c.want)
		}
	}
	if got := bucketLabel(day); got != "Nov 25" {
		t.Errorf("midnight's label %q, want the date", got)
	}
	if got := bucketLabel(day.Add(14 * time.Hour)); got != "14:00" {
		t.Errorf("14:00's label %q", got)
	}
	for _, c := range []struct {
		start time.Time
		step  time.Duration
		want  string
	}{
		{day.Add(14 * time.Hour), time.Hour, "Nov 25, 14:00–15:00 UTC"},
		{day.Add(14*time.Hour + 5*time.Minute), 5 * time.Minute, "Nov 25, 14:05–14:10 UTC"},
		{day.Add(23 * time.Hour), time.Hour, "Nov 25, 23:00–00:00 UTC"},
		{day, 24 * time.Hour, "Wed, Nov 25 2026 (UTC)"},
		{day.AddDate(0, 0, -2), 7 * 24 * time.Hour, "Nov 23 – Nov 29 2026 (UTC)"},
	} {
		if got := bucketPeriod(c.start, c.step); got != c.want {
			t.Errorf("period of %s + %v: %q, want %q", c.start, c.step, got, c.want)
		}
	}
	var b models.StatusBucket
	b.Counts[2], b.Counts[4], b.Counts[5] = 10, 1, 2
	if got := statusCounts(b); got != "13 requests: 10 2xx, 1 4xx, 2 5xx" {
		t.Errorf("counts %q", got)
	}
	if got := statusCounts(models.StatusBucket{}); got != "no requests" {
		t.Errorf("empty bucket %q", got)
	}
}
