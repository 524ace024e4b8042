package handlers

import (
	"bytes"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
	"ttconsole/views"
)

// Chart geometry, in SVG user units; the SVG scales to its box in CSS.
const (
	chartW, chartH      = 720, 170
	chartLeft, chartTop = 44, 8
	chartBottom         = 22
)

// requestsChartSVG draws the status chart of the filters in the query as
// an SVG document. The Requests page fetches it after the list and draws
// it inline, where each bar's <title> shows on hover; without a script the
// page shows it as an image. Either way the list never waits for the counts.
func (a *App) requestsChartSVG(c echo.Context) error {
	f, err := models.ParseRequestFilter(c.QueryParams())
	if err != nil {
		f = models.RequestFilter{} // the page shows the message; the chart shows everything
	}
	ch, err := a.statusChart(c, currentAccount(c), f)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := views.StatusChartSVG(ch).Render(c.Request().Context(), &buf); err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "private, max-age=30")
	return c.Blob(http.StatusOK, "image/svg+xml; charset=utf-8", buf.Bytes())
}

// chartStep is one bucket size the status chart can choose, with the
// multiples of it that its axis labels fall on.
type chartStep struct {
	d     time.Duration
	label []int // label every n-th bucket, n from this list, so labels land on round times
}

// chartSteps are the bucket sizes, smallest first. Each divides the day
// (or, for weeks, starts on Monday, as time's zero does), so buckets
// truncated to it start on the clock: 14:05, 15:00, midnight.
var chartSteps = []chartStep{
	{time.Minute, []int{1, 2, 5, 10, 15, 30}},
	{5 * time.Minute, []int{1, 2, 3, 6, 12}},
	{15 * time.Minute, []int{1, 2, 4, 8}},
	{time.Hour, []int{1, 2, 3, 4, 6, 12}},
	{6 * time.Hour, []int{1, 2, 4}},
	{24 * time.Hour, []int{1, 2, 7, 14}},
	{7 * 24 * time.Hour, []int{1, 2, 4, 13}},
}

// Bars and axis labels the status chart aims for at most.
const (
	chartMaxBars   = 62 // an hour of minutes, and the part minutes at either end
	chartMaxLabels = 8  // a phone shows every other one
)

// chartBuckets cuts [from, to) into buckets aligned to the clock: the
// smallest step of chartSteps that needs no more than chartMaxBars, the
// first bucket starting at or before from and the last ending at or after
// to. Ranges too long for weeks get whole days, as many as it takes.
func chartBuckets(from, to time.Time) (start time.Time, step time.Duration, n int) {
	from, to = from.UTC(), to.UTC()
	for _, s := range chartSteps {
		start = from.Truncate(s.d)
		n = int((to.Sub(start) + s.d - 1) / s.d)
		if n <= chartMaxBars {
			return start, s.d, max(n, 1)
		}
	}
	days := (to.Sub(from) + 24*time.Hour - 1) / (24 * time.Hour)
	step = (days + chartMaxBars - 1) / chartMaxBars * 24 * time.Hour
	start = from.Truncate(24 * time.Hour)
	return start, step, int((to.Sub(start) + step - 1) / step)
}

// chartLabelEvery is how many buckets apart the axis labels are: a round
// multiple of the step, with at most chartMaxLabels labels.
func chartLabelEvery(step time.Duration, n int) int {
	want := (n + chartMaxLabels - 1) / chartMaxLabels
	for _, s := range chartSteps {
		if s.d != step {
			continue
		}
		for _, every := range s.label {
			if every >= want {
				return every
			}
		}
	}
	return max(want, 1)
}

// onLabelTime reports whether a bucket starting at t gets an axis label
// when labels are every apart: whether t is a round multiple of it since
// time's zero (a Monday, midnight UTC).
func onLabelTime(t time.Time, every time.Duration) bool { return t.Truncate(every).Equal(t) }

// chartRange is the time the status chart covers: the filter's range, or
// the last 24 hours, up to now.
func chartRange(f models.RequestFilter, now time.Time) (from, to time.Time) {
	to, from = f.To, f.From
	if to.IsZero() || to.After(now) {
		to = now
	}
	if from.IsZero() {
		from = to.Add(-24 * time.Hour)
	}
	if !to.After(from) {
		from = to.Add(-time.Hour)
	}
	return from, to
}

// bucketLabel and bucketPeriod name a bucket on the axis and in its hover
// title; the title always says its zone. On the axis a day's first bucket
// is its date, the others their time, so a range across midnight reads.
func bucketLabel(start time.Time) string {
	if start.Equal(start.Truncate(24 * time.Hour)) {
		return start.Format("Jan 2")
	}
	return start.Format("15:04")
}

func bucketPeriod(start time.Time, step time.Duration) string {
	end := start.Add(step)
	switch {
	case step == 24*time.Hour:
		return start.Format("Mon, Jan 2 2006") + " (UTC)"
	case step > 24*time.Hour:
		return start.Format("Jan 2") + " – " + end.Add(-24*time.Hour).Format("Jan 2 2006") + " (UTC)"
	case start.YearDay() != end.YearDay() && !end.Equal(end.Truncate(24*time.Hour)):
		return start.Format("Jan 2 15:04") + " – " + end.Format("Jan 2 15:04") + " UTC"
	}
	return start.Format("Jan 2, 15:04") + "–" + end.Format("15:04") + " UTC"
}

// statusChart draws the requests matching f by status class over the
// chosen range as stacked bars, positions computed here so the SVG needs
// no script and no inline style.
func (a *App) statusChart(c echo.Context, accountID string, f models.RequestFilter) (views.StatusChart, error) {
	from, to := chartRange(f, time.Now().UTC())
	start, step, n := chartBuckets(from, to)
	buckets, err := a.Store.RequestStatusChart(c.Request().Context(), accountID, f, start, start.Add(time.Duration(n)*step), n)
	if err != nil {
		return views.StatusChart{}, err
	}
	ch := views.StatusChart{Width: chartW, Height: chartH, From: utcTime(from), To: utcTime(to)}
	var peak int64
	for _, b := range buckets {
		peak = max(peak, b.Total())
		for class := range 6 {
			ch.Totals[class] += b.Counts[class]
		}
	}
	ch.Empty = peak == 0
	plotH := chartH - chartTop - chartBottom
	plotW := chartW - chartLeft - 4
	step64 := float64(plotW) / float64(max(1, len(buckets)))
	every := chartLabelEvery(step, len(buckets))
	for i, b := range buckets {
		x := chartLeft + int(float64(i)*step64)
		bar := views.ChartBar{X: x, W: max(1, int(step64*0.8))}
		y := chartTop + plotH
		for _, s := range []struct {
			class int
			css   string
		}{{2, "s2xx"}, {4, "s4xx"}, {5, "s5xx"}, {0, "sother"}, {1, "sother"}, {3, "sother"}} {
			cnt := b.Counts[s.class]
			if cnt == 0 || peak == 0 {
				continue
			}
			h := int(cnt * int64(plotH) / peak)
			if h == 0 {
				h = 1
			}
			y -= h
			bar.Segments = append(bar.Segments, views.ChartSeg{Y: y, H: h, Class: s.css})
		}
		bar.Title = bucketPeriod(b.Start, step) + ": " + statusCounts(b)
		if onLabelTime(b.Start, time.Duration(every)*step) {
			bar.Label = bucketLabel(b.Start)
		}
		ch.Bars = append(ch.Bars, bar)
	}
	ch.Peak = strconv.FormatInt(peak, 10)
	ch.PlotBottom = chartTop + plotH
	ch.PlotTop = chartTop
	ch.Left = chartLeft
	ch.Right = chartW - 4
	return ch, nil
}

// statusCounts is a bucket's counts in words: "12 requests: 10 2xx, 2 4xx".
func statusCounts(b models.StatusBucket) string {
	total := b.Total()
	s := strconv.FormatInt(total, 10) + " requests"
	if total == 1 {
		s = "1 request"
	}
	if total == 0 {
		return "no requests"
	}
	sep := ": "
	for _, class := range []int{2, 4, 5} {
		if b.Counts[class] > 0 {
			s += sep + strconv.FormatInt(b.Counts[class], 10) + " " + strconv.Itoa(class) + "xx"
			sep = ", "
		}
	}
	if other := total - b.Counts[2] - b.Counts[4] - b.Counts[5]; other > 0 {
		s += sep + strconv.FormatInt(other, 10) + " other"
	}
	return s
}
