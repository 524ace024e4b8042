package handlers

import (
	"errors"
	"strings"
	"time"
	"unicode"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
)

// csvHeader names the export's columns. Money is in micro-dollars, as in
// the API's JSON, so a spreadsheet's sums are exact.
var csvHeader = []string{
	"request_id", "created_at_utc", "method", "path", "model", "status", "error_type", "error_message",
	"key_id", "key_name", "client_ip", "stream", "latency_ms", "prompt_tokens", "completion_tokens",
	"hold_micros", "charged_micros", "billing_outcome",
}

// requestsCSV streams the account's requests that match the filters as
// CSV (RFC 4180: CRLF line ends, quotes where needed), newest first, as
// the store reads them: memory stays flat whatever the size of the export.
func (a *App) requestsCSV(c echo.Context) error {
	ctx := c.Request().Context()
	acct := currentAccount(c)
	f, err := models.ParseRequestFilter(zonedFilters(c.QueryParams(), zoneOf(c)))
	if err != nil {
		var me *models.Error
		if errors.As(err, &me) && len(me.Fields) > 0 {
			return badCSVQuery(c, me.Fields, "")
		}
		return err
	}
	x, err := startCSV(c, "requests-"+time.Now().UTC().Format("20060102-150405")+".csv", csvHeader, 4096)
	if err != nil {
		return err
	}
	rec := make([]string, len(csvHeader))
	err = a.Store.EachRequestText(ctx, acct, f, func(r *models.RequestText) error {
		rec[0] = r.ID
		rec[1] = r.CreatedAt
		rec[2] = csvText(r.Method)
		rec[3] = csvText(r.Path)
		rec[4] = csvText(r.Model)
		rec[5] = r.Status
		rec[6] = csvText(r.ErrorType)
		rec[7] = csvText(r.ErrorMessage)
		rec[8] = csvText(r.KeyID)
		rec[9] = csvText(r.KeyName)
		rec[10] = csvText(r.ClientIP)
		rec[11] = r.Stream
		rec[12] = r.LatencyMS
		rec[13] = r.PromptTokens
		rec[14] = r.CompletionTokens
		rec[15] = r.HoldMicros
		rec[16] = r.ChargedMicros
		rec[17] = csvText(r.BillingOutcome)
		return x.write(rec)
	})
	return a.finishCSV(x, err)
}

// csvText neutralises a text cell a spreadsheet could run as a formula by
// putting an apostrophe in front, as OWASP advises: a cell that starts
// with =, +, -, @, a tab, a carriage return or a line feed, or with any
// whitespace before one of =, +, -, @ (spreadsheets skip it, and the
// writer turns a leading LF into CR LF). The text is otherwise unchanged;
// encoding/csv adds RFC 4180 quoting.
func csvText(s string) string {
	if s == "" {
		return s
	}
	lead := strings.TrimLeftFunc(s, unicode.IsSpace)
	if strings.ContainsRune("\t\r\n", rune(s[0])) || lead != "" && strings.ContainsRune("=+-@", rune(lead[0])) {
		return "'" + s
	}
	return s
}
