package handlers

import (
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
	"ttconsole/views"
)

// A change made in the console is recorded in the account's audit log.
// Store methods that change something take actor(c) and write the entry
// in the change's own transaction; a.audit records what has no
// transaction of its own, such as a sign-in.

// actor is who makes a change in this console request: the signed-in
// member (no one yet while signing up), with the request's address and id.
func actor(c echo.Context) models.Actor {
	by := models.Actor{IP: c.RealIP(), RequestID: RequestID(c)}
	if u := currentUser(c); u != nil {
		by.UserID, by.Name = u.ID, u.Email
	}
	return by
}

// audit records e, made in this request: by the signed-in member in their
// account unless e names its account and actor.
func (a *App) audit(c echo.Context, e models.AuditEntry) error {
	if e.AccountID == "" {
		e.AccountID = currentAccount(c)
	}
	return a.Store.Audit(c.Request().Context(), actor(c).Stamp(e))
}

// auditPerPage is the length of one page of the audit log.
const auditPerPage = 50

// auditFilter reads the audit page's filters, in the zone the console
// shows: the filter, the form to show back, and whether a value was bad.
func (a *App) auditFilter(c echo.Context, actors []models.AuditActor) (models.AuditFilter, views.Form, bool) {
	f, err := models.ParseAuditFilter(zonedFilters(c.QueryParams(), zoneOf(c)))
	form := views.Form{Values: map[string]string{}, Errors: map[string]string{}}
	for _, n := range []string{"actor", "action"} {
		form.Values[n] = c.QueryParam(n)
	}
	form.Values["from"], form.Values["to"] = pickerTime(f.From, zoneOf(c)), pickerTime(f.To, zoneOf(c))
	if fields, msg, ok := fieldErrors(err); ok {
		form.Errors, form.Message = fields, msg
	}
	if f.Actor != "" && !slices.ContainsFunc(actors, func(x models.AuditActor) bool { return x.Value == f.Actor }) {
		form.Errors["actor"], form.Message = "Choose someone from the list.", "Please correct the highlighted fields."
		f.Actor = ""
	}
	if msg := form.Errors["cursor"]; msg != "" {
		delete(form.Errors, "cursor")
		if len(form.Errors) == 0 {
			form.Message = msg
		}
	}
	return f, form, form.Message != ""
}

// auditPage lists the account's audit log, newest first, with its filters
// and an Older link.
func (a *App) auditPage(c echo.Context) error {
	ctx := c.Request().Context()
	acct := currentAccount(c)
	actors, err := a.Store.AuditActors(ctx, acct)
	if err != nil {
		return err
	}
	f, form, bad := a.auditFilter(c, actors)
	rows, next, err := a.Store.AuditLog(ctx, acct, f, auditPerPage)
	if err != nil {
		return err
	}
	d := views.AuditData{Form: form, Filtered: f.Filtered(), Older: f.Cursor != ""}
	for _, x := range actors {
		d.Actors = append(d.Actors, views.Option{Value: x.Value, Label: x.Name})
	}
	for _, act := range models.AuditActions() {
		d.Actions = append(d.Actions, views.Option{Value: act, Label: models.AuditActionLabel(act)})
	}
	for _, e := range rows {
		d.Rows = append(d.Rows, auditRow(e))
	}
	base := f.Values()
	d.CSVURL = "/audit.csv" + encodeQuery(base)
	d.NewestURL = "/audit" + encodeQuery(base)
	if next != "" {
		v := f.Values()
		v.Set("cursor", next)
		d.NextURL = "/audit?" + v.Encode()
	}
	status := http.StatusOK
	if bad {
		status = http.StatusBadRequest
	}
	return a.render(c, status, views.AuditPage(a.page(c, "Audit log", "audit"), d))
}

// auditRow lays out one entry: what changed in words, and a link to it.
func auditRow(e models.AuditEntry) views.AuditRow {
	r := views.AuditRow{ID: e.ID, At: e.At, Actor: e.Actor, Member: e.ActorUserID != nil,
		Action: e.Action, ActionLabel: models.AuditActionLabel(e.Action), Target: e.Target, TargetLabel: e.TargetLabel,
		Before: e.Before, After: e.After, IP: e.IP, RequestID: e.RequestID}
	if e.Field != "" {
		r.Field = fieldLabel(e.Field)
	}
	if e.Field == "status" {
		r.Before, r.After = views.KeyStateLabel(e.Before), views.KeyStateLabel(e.After)
	}
	switch {
	case strings.HasPrefix(e.Target, "key_"):
		r.TargetURL = "/keys/" + e.Target
	case strings.HasPrefix(e.Target, "pay_"):
		r.TargetURL = "/billing/payments/" + e.Target
	}
	return r
}

// fieldLabel names a changed setting the way people read it.
func fieldLabel(field string) string {
	switch field {
	case "created":
		return "Created"
	case "name":
		return "Name"
	case "models":
		return "Models"
	case "allowed_ips":
		return "Source IPs"
	case "monthly_limit":
		return "Monthly limit"
	case "rpm":
		return "Rate limit (requests per minute)"
	case "expires_at":
		return "Expiry"
	case "status":
		return "Status"
	case "keep_bodies":
		return "Request and response bodies"
	case "kept_bodies":
		return "Kept bodies"
	case "low_balance":
		return "Low-balance warning"
	case "balance":
		return "Balance"
	}
	return field
}
