package handlers

import (
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
		return badCSVQuery(c, form.Errors, form.Message)
	}
	f.Cursor = ""
	x, err := startCSV(c, "audit-"+time.Now().UTC().Format("20060102-150405")+".csv", auditCSVHeader, 1000)
	if err != nil {
		return err
	}
	rec := make([]string, len(auditCSVHeader))
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
		return x.write(rec)
	})
	return a.finishCSV(x, err)
}
