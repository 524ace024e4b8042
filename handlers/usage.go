package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
	"ttconsole/views"
	"ttconsole/views/components"
)

// usageFields are the Usage page's query fields, in the order its links
// write them.
var usageFields = []string{"from", "to", "group", "granularity"}

// usageSeries is how many groups the chart gives a colour of their own;
// the rest share one, "Other".
const usageSeries = 8

// usagePage shows the account's usage over a range: totals, spend per
// period by the chosen group, and a line per group, all from the usage
// roll-up (see models/usage_write.go).
func (a *App) usagePage(c echo.Context) error {
	ctx := c.Request().Context()
	acct := currentAccount(c)
	loc := zoneOf(c)
	now := time.Now()
	q, err := models.ParseUsageQuery(c.QueryParams(), loc, now)
	d := views.UsageData{Form: views.Form{Values: map[string]string{}}}
	for _, n := range usageFields {
		d.Form.Values[n] = c.QueryParam(n)
	}
	if d.Form.Values["group"] == "" {
		d.Form.Values["group"] = models.UsageByModel
	}
	d.Presets = usagePresets(c.QueryParams(), q, now)
	if fields, msg, ok := fieldErrors(err); ok {
		d.Form.Errors, d.Form.Message = fields, msg
		return a.render(c, http.StatusBadRequest, views.Usage(a.page(c, "Usage", "usage"), d))
	} else if err != nil {
		return err
	}

	rep, labels, err := a.usageReport(ctx, acct, q)
	if err != nil {
		return err
	}
	d.Shown = true
	d.Range = usageRange(q)
	d.HasAny = rep.Total.Requests != 0 || rep.Total.SpendMicros != 0
	d.CSVURL = "/usage.csv" + encodeQuery(usageValues(c.QueryParams()))

	// One precision for every amount of the page, so the lines add up to
	// the total as shown.
	amounts := []int64{rep.Total.SpendMicros}
	for _, g := range rep.Groups {
		amounts = append(amounts, g.SpendMicros)
	}
	dec := models.Decimals(amounts...)
	d.Totals = usageStats(rep.Total, dec)
	d.GroupHead = map[string]string{models.UsageByModel: "Model", models.UsageByKey: "API key", models.UsageByDay: "Day"}[q.Group]
	d.Caption = "Spend per " + map[string]string{models.UsageHourly: "hour", models.UsageDaily: "day"}[q.Granularity]
	if q.Group != models.UsageByDay {
		d.Caption += " by " + map[string]string{models.UsageByModel: "model", models.UsageByKey: "API key"}[q.Group]
	}

	series := usageSeriesOf(q, rep)
	d.Total = views.UsageLine{Label: "Total", UsageStats: d.Totals, RequestsURL: requestsLink(q, "", "", q.From, q.To)}
	for _, g := range rep.Groups {
		if q.Group == models.UsageByDay && g.Requests == 0 && g.SpendMicros == 0 {
			continue // a day without usage is a bar of zero in the chart; the table lists the days with some
		}
		line := views.UsageLine{UsageStats: usageStats(g.UsageTotals, dec), Class: series[g.Value]}
		line.Label, line.Title = usageLabel(q, g.Value, labels)
		switch q.Group {
		case models.UsageByModel:
			if g.Value != "" {
				line.RequestsURL = requestsLink(q, "model", g.Value, q.From, q.To)
			}
		case models.UsageByKey:
			if g.Value != "" {
				line.RequestsURL = requestsLink(q, "key", g.Value, q.From, q.To)
			}
		case models.UsageByDay:
			line.Label = g.Start.In(loc).Format("Mon Jan 2, 2006")
			line.RequestsURL = requestsLink(q, "", "", g.Start, g.End)
		}
		d.Rows = append(d.Rows, line)
	}
	d.Chart, d.Legend = usageChart(q, rep, series, labels)
	return a.render(c, http.StatusOK, views.Usage(a.page(c, "Usage", "usage"), d))
}

// usageValues keeps the Usage fields of a query string, for its links.
func usageValues(q url.Values) url.Values {
	v := url.Values{}
	for _, n := range usageFields {
		if s := q.Get(n); s != "" {
			v.Set(n, s)
		}
	}
	return v
}

// usagePresets are the range shortcuts, each keeping the grouping: the
// last 24 hours (hourly), 7 and 30 days, this month and last month
// (daily), in the zone the console shows.
func usagePresets(cur url.Values, q models.UsageQuery, now time.Time) []views.UsagePreset {
	loc := q.Zone
	t := now.In(loc)
	today := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	day := func(d time.Time) string { return d.Format("2006-01-02") }
	monthStart := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, loc)
	lastMonth := monthStart.AddDate(0, -1, 0)
	hourAgo := now.Truncate(time.Hour).Add(-23 * time.Hour).In(loc)
	presets := []struct{ label, from, to, gran string }{
		{"24 h", hourAgo.Format("2006-01-02T15:04"), "", models.UsageHourly},
		{"7 d", day(today.AddDate(0, 0, -6)), day(today), models.UsageDaily},
		{"30 d", day(today.AddDate(0, 0, -29)), day(today), models.UsageDaily},
		{"This month", day(monthStart), day(today), models.UsageDaily},
		{"Last month", day(lastMonth), day(monthStart.AddDate(0, 0, -1)), models.UsageDaily},
	}
	out := make([]views.UsagePreset, len(presets))
	for i, p := range presets {
		v := url.Values{}
		v.Set("from", p.from)
		if p.to != "" {
			v.Set("to", p.to)
		}
		if g := cur.Get("group"); g != "" {
			v.Set("group", g)
		}
		v.Set("granularity", p.gran)
		out[i] = views.UsagePreset{Label: p.label, URL: "/usage?" + v.Encode(),
			Active: cur.Get("from") == p.from && cur.Get("to") == p.to}
		if p.label == "30 d" && cur.Get("from") == "" && cur.Get("to") == "" {
			out[i].Active = true // the page's default range
		}
	}
	return out
}

// usageRange is a range in words: whole days as "Nov 3 – Dec 2, 2026
// (UTC)", both days included; otherwise "Dec 1, 2026 14:00 – Dec 2, 2026
// 14:00 (UTC)".
func usageRange(q models.UsageQuery) string {
	from, to := q.From.In(q.Zone), q.To.In(q.Zone)
	midnight := func(t time.Time) bool { return t.Hour() == 0 && t.Minute() == 0 }
	zone := " (" + zoneLabel(q.Zone) + ")"
	if !midnight(from) || !midnight(to) {
		const layout = "Jan 2, 2006 15:04"
		return from.Format(layout) + " – " + to.Format(layout) + zone
	}
	last := to.AddDate(0, 0, -1)
	switch {
	case last.Equal(from):
		return from.Format("Mon, Jan 2, 2006") + zone
	case last.Year() != from.Year():
		return from.Format("Jan 2, 2006") + " – " + last.Format("Jan 2, 2006") + zone
	}
	return from.Format("Jan 2") + " – " + last.Format("Jan 2, 2006") + zone
}

func zoneLabel(loc *time.Location) string { return components.ZoneName(loc) }

// usageStats formats totals, spend at dec decimals.
func usageStats(t models.UsageTotals, dec int) views.UsageStats {
	s := views.UsageStats{
		Requests: thousands(t.Requests), Errors: thousands(t.Errors), ErrorRate: "—",
		PromptTokens: thousands(t.PromptTokens), CompletionTokens: thousands(t.CompletionTokens),
		Spend: models.FormatUSDAt(t.SpendMicros, dec),
	}
	if t.Requests > 0 {
		s.ErrorRate = percent(t.Errors, t.Requests)
	}
	return s
}

// thousands is n with its thousands grouped: "1,234,567".
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// usageLabel names a group's value as a customer reads it, and the code
// behind it for the hover.
func usageLabel(q models.UsageQuery, value string, labels map[string]models.KeyLabel) (label, title string) {
	switch q.Group {
	case models.UsageByKey:
		if value == "" {
			return "No key", "calls made without a key, and late charges paid from a recharge"
		}
		name, display := keyName(&value, labels)
		return name, display
	case models.UsageByModel:
		if value == "" {
			return "No model", "calls that named no model, and late charges paid from a recharge"
		}
		return value, value
	}
	return value, ""
}

// requestsLink is the Requests list of the calls made in [from, to),
// narrowed to field = value when field is set.
func requestsLink(q models.UsageQuery, field, value string, from, to time.Time) string {
	v := url.Values{}
	if field != "" {
		v.Set(field, value)
	}
	v.Set("from", from.In(q.Zone).Format(time.RFC3339))
	v.Set("to", to.In(q.Zone).Format(time.RFC3339))
	return "/requests?" + v.Encode()
}

// usageSeriesOf gives the groups with the most spend a colour each (by
// day, the chart has one colour: its periods are the days).
func usageSeriesOf(q models.UsageQuery, rep models.UsageReport) map[string]string {
	out := map[string]string{}
	if q.Group == models.UsageByDay {
		return out
	}
	var spent []string // rep.Groups is in order of spend, most first
	for _, g := range rep.Groups {
		if g.SpendMicros > 0 {
			spent = append(spent, g.Value)
		}
	}
	for i, v := range spent {
		if i == usageSeries-1 && len(spent) > usageSeries {
			break // the last colour is "Other"
		}
		out[v] = "u" + strconv.Itoa(i)
	}
	return out
}

// Chart geometry, in SVG units; the SVG scales to its box in CSS.
const (
	usageChartW, usagePlotH = 720, 160
	usageChartLeft          = 0
)

// usageChart lays out the stacked spend chart: a bar per period, a
// segment per group with a colour (the others together as "Other"),
// highest spend at the bottom.
func usageChart(q models.UsageQuery, rep models.UsageReport, series map[string]string,
	labels map[string]models.KeyLabel) (views.UsageChart, []views.UsageSeries) {
	ch := views.UsageChart{Left: usageChartLeft, Right: usageChartW, PlotTop: 0, PlotBottom: usagePlotH}
	var peak int64
	for _, p := range rep.Periods {
		peak = max(peak, p.SpendMicros)
	}
	ch.Peak = models.FormatUSD(peak)
	ch.Empty = peak == 0

	// The legend's order, which is also each bar's order from the bottom.
	type entry struct{ value, label, class string }
	var order []entry
	other := false
	for _, g := range rep.Groups {
		if cls, ok := series[g.Value]; ok {
			label, _ := usageLabel(q, g.Value, labels)
			order = append(order, entry{g.Value, label, cls})
		} else if q.Group != models.UsageByDay && g.SpendMicros > 0 {
			other = true
		}
	}
	var legend []views.UsageSeries
	for _, e := range order {
		legend = append(legend, views.UsageSeries{Label: e.label, Class: e.class})
	}
	if other {
		legend = append(legend, views.UsageSeries{Label: "Other", Class: "uother"})
	}

	n := len(rep.Periods)
	step := usageChartW / max(1, n)
	barW := max(1, step-max(1, step/5))
	if step <= 2 {
		barW = step
	}
	labelLayout := "Jan 2" // days; hours of more than one day say their day too
	switch {
	case q.Granularity == models.UsageHourly && n <= 24:
		labelLayout = "15:04"
	case q.Granularity == models.UsageHourly:
		labelLayout = "Jan 2 15:04"
	}
	every := max(1, n/6)
	scale := func(v int64) int {
		if v <= 0 || peak == 0 {
			return 0
		}
		return max(1, int(v*usagePlotH/peak))
	}
	for i, p := range rep.Periods {
		when := usagePeriodName(q, p)
		bar := views.UsageBar{X: usageChartLeft + i*step, W: barW,
			Title: when + ": " + models.FormatUSD(p.SpendMicros) + " spent, " + thousands(p.Requests) + " requests"}
		// Every few periods a label, and the last one always (the one
		// before it gives way when they would touch).
		if last := i == n-1; last || i%every == 0 && n-1-i >= every/2+1 {
			bar.Label = p.Start.In(q.Zone).Format(labelLayout)
			bar.Minor = !last && (i/every)%2 == 1
		}
		y := usagePlotH
		seg := func(class, label string, t models.UsageTotals) {
			h := scale(t.SpendMicros)
			if h == 0 {
				return
			}
			h = min(h, y)
			y -= h
			bar.Segments = append(bar.Segments, views.UsageSeg{Y: y, H: h, Class: class,
				Title: label + ", " + when + ": " + models.FormatUSD(t.SpendMicros) + " (" + thousands(t.Requests) + " requests)"})
		}
		if q.Group == models.UsageByDay {
			seg("u0", "Spend", p.UsageTotals)
		} else {
			var rest models.UsageTotals
			for value, t := range p.Groups {
				if _, ok := series[value]; !ok {
					rest.Requests += t.Requests
					rest.SpendMicros += t.SpendMicros
				}
			}
			for _, e := range order {
				seg(e.class, e.label, p.Groups[e.value])
			}
			seg("uother", "Other", rest)
		}
		ch.Bars = append(ch.Bars, bar)
	}
	return ch, legend
}

// usagePeriodName is a period in words, zone included, as the other
// charts' titles: "Mon, Nov 25 (UTC)" or "Nov 25, 14:00 (UTC)".
func usagePeriodName(q models.UsageQuery, p models.UsagePeriod) string {
	layout := "Mon, Jan 2"
	if q.Granularity == models.UsageHourly {
		layout = "Jan 2, 15:04"
	}
	return p.Start.In(q.Zone).Format(layout) + " (" + zoneLabel(q.Zone) + ")"
}

// usageReport is the account's usage for q, and its keys' names, for the
// page and the CSV alike.
func (a *App) usageReport(ctx context.Context, acct string, q models.UsageQuery) (models.UsageReport, map[string]models.KeyLabel, error) {
	rows, err := a.Store.UsageRows(ctx, acct, q)
	if err != nil {
		return models.UsageReport{}, nil, err
	}
	labels, err := a.Store.RequestKeyLabels(ctx, acct)
	if err != nil {
		return models.UsageReport{}, nil, err
	}
	return models.BuildUsageReport(q, rows), labels, nil
}
