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
// an SVG image. The Requests page loads it with <img>, so the list renders
// without waiting for the counts, and the chart works without JavaScript.
func (a *App) requestsChartSVG(c echo.Context) error {
	f, err := models.ParseRequestFilter(c.QueryParams())
	if err != nil {
		f = models.RequestFilter{} // the page shows the message; the chart shows everything
	}
	ch, err := a.statusChart(c, currentUser(c).AccountID, f)
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

// chartRange is the time the status chart covers: the filter's range, or
// the last 24 hours, cut into hours or days.
func chartRange(f models.RequestFilter, now time.Time) (from, to time.Time, n int) {
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
	span := to.Sub(from)
	switch {
	case span <= 48*time.Hour:
		n = max(1, int((span+time.Hour-1)/time.Hour))
	case span <= 62*24*time.Hour:
		n = int((span + 24*time.Hour - 1) / (24 * time.Hour))
	default:
		n = 60
	}
	return from, to, n
}

// statusChart draws the requests matching f by status class over the
// chosen range as stacked bars, positions computed here so the SVG needs
// no script and no inline style.
func (a *App) statusChart(c echo.Context, accountID string, f models.RequestFilter) (views.StatusChart, error) {
	from, to, n := chartRange(f, time.Now().UTC())
	buckets, err := a.Store.RequestStatusChart(c.Request().Context(), accountID, f, from, to, n)
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
	step := plotW / max(1, len(buckets))
	barW := max(1, step-max(1, step/5))
	hourly := to.Sub(from) <= 48*time.Hour
	for i, b := range buckets {
		bar := views.ChartBar{X: chartLeft + i*step, W: barW}
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
		label := b.Start.Format("Jan 2")
		if hourly {
			label = b.Start.Format("15:04")
		}
		bar.Title = label + " UTC: " + strconv.FormatInt(b.Total(), 10) + " requests (" +
			strconv.FormatInt(b.Counts[2], 10) + " 2xx, " + strconv.FormatInt(b.Counts[4], 10) + " 4xx, " +
			strconv.FormatInt(b.Counts[5], 10) + " 5xx)"
		if every := max(1, len(buckets)/6); i%every == 0 {
			bar.Label = label
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
