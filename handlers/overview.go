package handlers

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
	"ttconsole/views"
)

// overviewDays is how far back the overview's chart goes.
const overviewDays = 30

// overview shows the wallet, this month's spend, today's requests and
// error rate, the last 30 days, and the latest failed requests.
func (a *App) overview(c echo.Context) error {
	ctx := c.Request().Context()
	acct := currentAccount(c)
	w, err := a.Store.WalletOf(ctx, acct)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	days, err := a.Store.RequestDays(ctx, acct, overviewDays, now)
	if err != nil {
		return err
	}
	failed, err := a.Store.LatestFailed(ctx, acct, 5)
	if err != nil {
		return err
	}
	labels, err := a.Store.RequestKeyLabels(ctx, acct)
	if err != nil {
		return err
	}
	d := views.OverviewData{
		BaseURL: baseURL(c),
		NoFunds: w.Available() <= 0, MinRecharge: models.FormatUSD(models.MinRechargeMicros),
	}
	// Spend is what the ledger charged, as on the Billing page, so the two
	// pages agree to the cent.
	spend, err := a.Store.DailySpend(ctx, acct, overviewDays, now)
	if err != nil {
		return err
	}
	mtd, err := a.Store.SpendSince(ctx, acct, models.MonthStart(now))
	if err != nil {
		return err
	}
	var total int64
	for _, day := range days {
		total += day.Requests
	}
	// The wallet's figures sit side by side: one precision for all.
	m := models.FormatUSDs(w.BalanceMicros, w.Available(), w.HeldMicros, mtd)
	d.Balance, d.Available, d.Held, d.MonthToDate = m[0], m[1], m[2], m[3]
	today := days[len(days)-1]
	d.RequestsToday = strconv.FormatInt(today.Requests, 10)
	d.ErrorRateToday = "—"
	if today.Requests > 0 {
		d.ErrorRateToday = percent(today.Errors, today.Requests)
	}
	d.ErrorsToday = strconv.FormatInt(today.Errors, 10)
	d.HasRequests = total > 0 || len(failed) > 0
	if !d.HasRequests {
		if d.HasRequests, err = a.Store.HasRequests(ctx, acct); err != nil {
			return err
		}
	}
	alerts, err := a.Store.OpenAlerts(ctx, acct, 10)
	if err != nil {
		return err
	}
	for _, al := range alerts {
		d.Alerts = append(d.Alerts, views.AlertRow{ID: al.ID, Kind: al.Kind, Title: al.Title, Body: al.Body, Link: al.Link, At: al.CreatedAt})
	}
	d.Requests, d.Spend = dayCharts(days, spend)
	d.Failed = requestRows(failed, labels)
	return a.render(c, http.StatusOK, views.Overview(a.page(c, "Overview", "overview"), d))
}

// percent is part/whole with one decimal: "2.5%".
func percent(part, whole int64) string {
	tenths := (part*1000 + whole/2) / whole
	return strconv.FormatInt(tenths/10, 10) + "." + strconv.FormatInt(tenths%10, 10) + "%"
}

// dayCharts lays out the overview's two bar charts: requests per day
// (errors in their own colour) and spend per day.
func dayCharts(days []models.DayStat, spent []models.DaySpend) (reqs, spend views.DayChart) {
	const w, h, left, top, bottom = 720, 150, 56, 8, 22
	plotH := h - top - bottom
	step := (w - left - 4) / max(1, len(days))
	barW := max(1, step-max(1, step/5))
	var peakReq, peakSpend int64
	for i, d := range days {
		peakReq, peakSpend = max(peakReq, d.Requests), max(peakSpend, spent[i].Micros)
	}
	scale := func(v, peak int64) int {
		if v == 0 || peak == 0 {
			return 0
		}
		return max(1, int(v*int64(plotH)/peak))
	}
	reqs = views.DayChart{Width: w, Height: h, Left: left, PlotTop: top, PlotBottom: top + plotH, Right: w - 4,
		Peak: strconv.FormatInt(peakReq, 10)}
	spend = views.DayChart{Width: w, Height: h, Left: left, PlotTop: top, PlotBottom: top + plotH, Right: w - 4,
		Peak: models.FormatUSD(peakSpend)}
	for i, d := range days {
		x := left + i*step
		label := ""
		if i%5 == 0 || i == len(days)-1 {
			label = d.Day.Format("Jan 2")
		}
		day := d.Day.Format("Mon, Jan 2") + " (UTC)"
		all, errs := scale(d.Requests, peakReq), scale(d.Errors, peakReq)
		rb := views.ChartBar{X: x, W: barW, Label: label,
			Title: day + ": " + strconv.FormatInt(d.Requests, 10) + " requests, " + strconv.FormatInt(d.Errors, 10) + " errors"}
		if all > 0 {
			rb.Segments = append(rb.Segments, views.ChartSeg{Y: top + plotH - all, H: all - errs, Class: "s2xx"})
			if errs > 0 {
				rb.Segments = append(rb.Segments, views.ChartSeg{Y: top + plotH - errs, H: errs, Class: "s4xx"})
			}
		}
		reqs.Bars = append(reqs.Bars, rb)
		sh := scale(spent[i].Micros, peakSpend)
		sb := views.ChartBar{X: x, W: barW, Label: label, Title: day + ": " + models.FormatUSD(spent[i].Micros) + " spent"}
		if sh > 0 {
			sb.Segments = []views.ChartSeg{{Y: top + plotH - sh, H: sh, Class: "spend"}}
		}
		spend.Bars = append(spend.Bars, sb)
	}
	return reqs, spend
}
