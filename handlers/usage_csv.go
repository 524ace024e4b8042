package handlers

import (
	"encoding/csv"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
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
	if fields, _, ok := fieldErrors(err); ok {
		var b strings.Builder
		for _, name := range slices.Sorted(maps.Keys(fields)) {
			fmt.Fprintf(&b, "%s: %s\n", name, fields[name])
		}
		return c.String(http.StatusBadRequest, b.String())
	} else if err != nil {
		return err
	}
	rep, labels, err := a.usageReport(ctx, acct, q)
	if err != nil {
		return err
	}

	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set(echo.HeaderContentDisposition, `attachment; filename="usage-`+q.From.In(q.Zone).Format("20060102")+"-"+
		q.To.In(q.Zone).Format("20060102")+`.csv"`)
	h.Set("Cache-Control", "no-store")
	c.Response().WriteHeader(http.StatusOK)
	w := csv.NewWriter(c.Response())
	w.UseCRLF = true
	if err := w.Write(usageCSVHeader); err != nil {
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
			err := w.Write([]string{start, end, q.Group, csvText(value), csvText(label),
				strconv.FormatInt(t.Requests, 10), strconv.FormatInt(t.Errors, 10), strconv.FormatInt(t.PromptTokens, 10),
				strconv.FormatInt(t.CompletionTokens, 10), strconv.FormatInt(t.SpendMicros, 10)})
			if err != nil {
				return err
			}
		}
	}
	w.Flush()
	return w.Error()
}
