package handlers

import (
	"bytes"
	"context"
	"net/http"
	"strconv"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"ttconsole/models"
	"ttconsole/views"
	"ttconsole/views/components"
)

// render writes a component into a buffer first, so a failing template
// still becomes a clean error page instead of half a page with a 200.
// The page is rendered even when the request's context has ended: a body
// that timed out cancels it, and its error page must still be written.
func (a *App) render(c echo.Context, status int, comp templ.Component) error {
	page, err := renderPage(c, comp)
	if err != nil {
		return err
	}
	return c.HTMLBlob(status, page)
}

func renderPage(c echo.Context, comp templ.Component) ([]byte, error) {
	var buf bytes.Buffer
	ctx := components.WithZone(context.WithoutCancel(c.Request().Context()), zoneOf(c))
	if err := comp.Render(ctx, &buf); err != nil {
		return nil, err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return buf.Bytes(), nil
}

// renderThen renders like render, sends the whole page to the client,
// and only then calls after: work the answer must not wait for, nor be
// slowed by while it is written.
func (a *App) renderThen(c echo.Context, status int, comp templ.Component, after func()) error {
	page, err := renderPage(c, comp)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderContentLength, strconv.Itoa(len(page))) // complete once flushed
	if err = c.HTMLBlob(status, page); err == nil {
		c.Response().Flush()
	}
	after()
	return err
}

// page returns the layout's props for the current request.
func (a *App) page(c echo.Context, title, nav string) views.Page {
	p := views.Page{Title: title, Nav: nav, CSRF: csrfToken(c), RequestID: RequestID(c), TestMode: a.Payments == nil,
		Zone: components.ZoneName(zoneOf(c))}
	if c.Request().Method == http.MethodGet { // the zone switch returns here; a form's answer has no address to return to
		p.Here = c.Request().URL.RequestURI()
	}
	if u := currentUser(c); u != nil {
		p.User = a.headerUser(c, u)
		p.Can = views.Can{Fix: can(c, permFix), Keys: can(c, permKeys), Billing: can(c, permBilling),
			Members: can(c, permMembers), Transfer: can(c, permTransfer),
			KeysBy: orList(rowOf(permKeys).roles), BillingBy: orList(rowOf(permBilling).roles)}
	}
	p.Flashes = a.popFlashes(c)
	return p
}

// headerUser is the signed-in user as the header shows them: the active
// account's balance, and the account switcher with the user's role in
// each account.
func (a *App) headerUser(c echo.Context, u *models.User) *views.User {
	ctx := c.Request().Context()
	vu := &views.User{Email: u.Email, Balance: "—", Unverified: u.EmailVerifiedAt == nil,
		CanSeeAudit: can(c, permAudit)}
	if m := currentMember(c); m != nil {
		vu.Account, vu.Role = m.AccountName, m.Role
		if w, err := a.Store.WalletOf(ctx, m.AccountID); err == nil {
			vu.Balance = models.FormatUSD(w.BalanceMicros)
			vu.LowBalance = a.lowBalance(ctx, m.AccountID, w)
			switch {
			case w.BalanceMicros <= 0:
				vu.BalanceState = views.BalanceEmpty
			case vu.LowBalance:
				vu.BalanceState = views.BalanceLow
			}
		}
	}
	if accounts, err := a.Store.AccountsOf(ctx, u.ID); err == nil {
		for _, ar := range accounts {
			vu.Accounts = append(vu.Accounts, views.AccountChoice{ID: ar.AccountID, Name: ar.AccountName, Role: ar.Role,
				Current: ar.AccountID == currentAccount(c)})
		}
	}
	return vu
}

// formValues returns the named form fields, trimmed of nothing: what the
// user typed is what the page shows back.
func formValues(c echo.Context, names ...string) map[string]string {
	v := make(map[string]string, len(names))
	for _, n := range names {
		v[n] = c.FormValue(n)
	}
	return v
}

// fieldErrors returns the per-field messages of a validation error.
func fieldErrors(err error) (map[string]string, string, bool) {
	me, ok := err.(*models.Error)
	if !ok || (me.Code != models.EINVALID && me.Code != models.ECONFLICT) {
		return nil, "", false
	}
	return me.Fields, me.Message, true
}

// statusOfFormError is the status of a form page re-rendered with messages.
func statusOfFormError(err error) int {
	if models.ErrorCode(err) == models.ECONFLICT {
		return http.StatusConflict
	}
	return http.StatusUnprocessableEntity
}
