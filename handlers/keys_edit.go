package handlers

import (
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
	"ttconsole/views"
)

// keyEventsShown is how much history a key's page shows: the latest
// entries of the audit log about the key.
const keyEventsShown = 100

// keyPage shows one key of the account, with its edit form.
func (a *App) keyPage(c echo.Context) error {
	k, err := a.Store.APIKeyOf(c.Request().Context(), currentAccount(c), c.Param("id"))
	if err != nil {
		return err
	}
	f, err := a.newKeyForm(c, "/keys/"+k.ID, k)
	if err != nil {
		return err
	}
	return a.renderKey(c, http.StatusOK, k, f)
}

// updateKey saves the edit form. Bad input changes nothing and shows the
// form again with a message beside each field.
func (a *App) updateKey(c echo.Context) error {
	in, err := formKeyInput(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	_, changed, err := a.Store.UpdateAPIKey(ctx, currentAccount(c), c.Param("id"), actor(c), in)
	if _, _, ok := fieldErrors(err); ok && models.ErrorCode(err) == models.EINVALID {
		k, kerr := a.Store.APIKeyOf(ctx, currentAccount(c), c.Param("id"))
		if kerr != nil {
			return kerr
		}
		f, ferr := a.refillKeyForm(c, "/keys/"+k.ID, in, err)
		if ferr != nil {
			return ferr
		}
		return a.renderKey(c, statusOfFormError(err), k, f)
	}
	if err != nil {
		return err
	}
	switch changed {
	case 0:
		a.flash(c, "Nothing changed.")
	case 1:
		a.flash(c, "Saved 1 change.")
	default:
		a.flash(c, fmt.Sprintf("Saved %d changes.", changed))
	}
	return c.Redirect(http.StatusSeeOther, "/keys/"+c.Param("id"))
}

// renderKey renders a key's page with the edit form f.
func (a *App) renderKey(c echo.Context, status int, k *models.APIKey, f views.KeyForm) error {
	ctx := c.Request().Context()
	now := time.Now().UTC()
	spent, held, err := a.Store.KeyMonthUsage(ctx, k.ID, now)
	if err != nil {
		return err
	}
	events, _, err := a.Store.AuditLog(ctx, k.AccountID, models.AuditFilter{Target: k.ID}, keyEventsShown)
	if err != nil {
		return err
	}
	keptBodies, err := a.Store.KeptBodiesCount(ctx, k.AccountID, k.ID)
	if err != nil {
		return err
	}
	d := views.KeyDetail{
		ID: k.ID, Name: k.Name, Display: k.Display(), State: k.State(now), Status: k.Status,
		Scope: scopeSummary(k), RPM: k.RPM, CreatedAt: k.CreatedAt, LastUsed: k.LastUsedAt, ExpiresAt: k.ExpiresAt,
		Usage:      usageView(k, models.KeyUsage{SpentMicros: spent, HeldMicros: held}, now, 2),
		Requests:   keyRequestsURL(k.ID),
		KeepBodies: k.KeepBodies, KeepBodiesDays: k.KeepBodiesDays, KeptBodies: keptBodies,
	}
	for _, p := range k.IPPrefixes() {
		d.IPs = append(d.IPs, p.String())
	}
	for _, e := range events {
		r := auditRow(e)
		what := r.Field
		if e.Action == models.AuditKeyCreated {
			what = fieldLabel("created")
		} else if what == "" {
			what = r.ActionLabel
		}
		d.Events = append(d.Events, views.KeyEventRow{At: e.At, Actor: e.Actor, What: what, From: r.Before, To: r.After})
	}
	return a.render(c, status, views.KeyDetailPage(a.page(c, k.Name+" · API keys", "keys"), d, f))
}
