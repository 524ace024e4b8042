package handlers

import (
	"bufio"
	"encoding/csv"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
)

// auditCSVHeader names the audit export's columns: the log as stored,
// times in UTC.
var auditCSVHeader = []string{
	"id", "at_utc", "actor", "actor_user_id", "action", "target", "target_label", "field", "before", "after",
	"ip", "request_id",
}

// auditCSV streams the account's audit log, with the filters of the audit
// page, as CSV (RFC 4180), newest first, a page of the log at a time.
func (a *App) auditCSV(c echo.Context) error {
	ctx := c.Request().Context()
	acct := currentAccount(c)
	actors, err := a.Store.AuditActors(ctx, acct)
	if err != nil {
		return err
	}
	f, form, bad := a.auditFilter(c, actors)
	if bad {
		// A download has no form to highlight: say which parameter is wrong.
		var b strings.Builder
		for _, name := range slices.Sorted(maps.Keys(form.Errors)) {
			b.WriteString(name + ": " + form.Errors[name] + "\n")
		}
		if b.Len() == 0 {
			b.WriteString(form.Message + "\n")
		}
		return c.String(http.StatusBadRequest, b.String())
	}
	f.Cursor = ""
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set(echo.HeaderContentDisposition, `attachment; filename="audit-`+time.Now().UTC().Format("20060102-150405")+`.csv"`)
	h.Set("Cache-Control", "no-store")

	bw := bufio.NewWriterSize(c.Response(), 64<<10)
	w := csv.NewWriter(bw)
	w.UseCRLF = true
	if err := w.Write(auditCSVHeader); err != nil {
		return err
	}
	rec := make([]string, len(auditCSVHeader))
	n := 0
	err = a.Store.EachAuditEntry(ctx, acct, f, func(e *models.AuditEntry) error {
		rec[0] = e.ID
		rec[1] = e.At.UTC().Format("2006-01-02T15:04:05.000Z")
		rec[2] = csvText(e.Actor)
		rec[3] = ""
		if e.ActorUserID != nil {
			rec[3] = *e.ActorUserID
		}
		rec[4] = csvText(e.Action)
		rec[5] = csvText(e.Target)
		rec[6] = csvText(e.TargetLabel)
		rec[7] = csvText(e.Field)
		rec[8] = csvText(e.Before)
		rec[9] = csvText(e.After)
		rec[10] = csvText(e.IP)
		rec[11] = csvText(e.RequestID)
		if err := w.Write(rec); err != nil {
			return err
		}
		if n++; n%1000 == 0 {
			w.Flush()
			if err := bw.Flush(); err != nil {
				return err // the client went away
			}
			c.Response().Flush()
		}
		return nil
	})
	if err != nil && !c.Response().Committed {
		return err
	}
	w.Flush()
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		a.Log.Warn("csv export cut short", "request_id", RequestID(c), "rows", n, "err", err.Error())
	}
	return nil
}
