package handlers

import (
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
)

// usageCSVHeader names the Usage export's columns: a line per period and
// group with any usage. Money is in micro-dollars, as in the request
// export, so a spreadsheet's sums are exact.
var usageCSVHeader = []string{
	"period_start", "period_end", "group", "group_value", "group_label", "requests", "errors",
	"prompt_tokens", "completion_tokens", "spend_micros",
}

// usageCSV is the Usage page's numbers for the same query, as CSV: what
// the chart draws, a line per period and group. A bad value is a plain
// 400 that names its field.
func (a *App) usageCSV(c echo.Context) error {
	ctx := c.Request().Context()
	acct := currentAccount(c)
	q, err := models.ParseUsageQuery(c.QueryParams(), zoneOf(c), time.Now())
	if fields, msg, ok := fieldErrors(err); ok {
		return badCSVQuery(c, fields, msg)
	} else if err != nil {
		return err
	}
	rep, labels, err := a.usageReport(ctx, acct, q)
	if err != nil {
		return err
	}

	x, err := startCSV(c, "usage-"+q.From.In(q.Zone).Format("20060102")+"-"+q.To.In(q.Zone).Format("20060102")+".csv",
		usageCSVHeader, 4096)
	if err != nil {
		return err
	}
	for _, p := range rep.Periods {
		start, end := p.Start.In(q.Zone).Format(time.RFC3339), p.End.In(q.Zone).Format(time.RFC3339)
		for _, value := range slices.Sorted(maps.Keys(p.Groups)) {
			t := p.Groups[value]
			if t.Requests == 0 && t.SpendMicros == 0 {
				continue
			}
			label, _ := usageLabel(q, value, labels)
			if q.Group == models.UsageByDay {
				label = value
			}
			err := x.write([]string{start, end, q.Group, csvText(value), csvText(label),
				strconv.FormatInt(t.Requests, 10), strconv.FormatInt(t.Errors, 10), strconv.FormatInt(t.PromptTokens, 10),
				strconv.FormatInt(t.CompletionTokens, 10), strconv.FormatInt(t.SpendMicros, 10)})
			if err != nil {
				return err
			}
		}
	}
	return a.finishCSV(x, nil)
}
