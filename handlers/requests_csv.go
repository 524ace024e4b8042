package handlers

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
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
		// A download has no form to highlight: say which parameter is wrong.
		var me *models.Error
		if errors.As(err, &me) && len(me.Fields) > 0 {
			var b strings.Builder
			for _, name := range slices.Sorted(maps.Keys(me.Fields)) {
				fmt.Fprintf(&b, "%s: %s\n", name, me.Fields[name])
			}
			return c.String(http.StatusBadRequest, b.String())
		}
		return err
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set(echo.HeaderContentDisposition, `attachment; filename="requests-`+time.Now().UTC().Format("20060102-150405")+`.csv"`)
	h.Set("Cache-Control", "no-store")

	bw := bufio.NewWriterSize(c.Response(), 64<<10)
	w := csv.NewWriter(bw)
	w.UseCRLF = true
	if err := w.Write(csvHeader); err != nil {
		return err
	}
	rec := make([]string, len(csvHeader))
	n := 0
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
		if err := w.Write(rec); err != nil {
			return err
		}
		if n++; n%4096 == 0 {
			w.Flush()
			if err := bw.Flush(); err != nil {
				return err // the client went away
			}
			c.Response().Flush()
		}
		return nil
	})
	if err != nil && !c.Response().Committed {
		return err // nothing is sent yet: the error handler answers
	}
	w.Flush()
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		// The status is sent; all that is left is to stop and log.
		a.Log.Warn("csv export cut short", "request_id", RequestID(c), "rows", n, "err", err.Error())
	}
	return nil
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
