package handlers

import (
	"fmt"
	"math"
	"net/http"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
	"ttconsole/views"
)

func (a *App) signupPage(c echo.Context) error {
	if currentUser(c) != nil {
		return c.Redirect(http.StatusSeeOther, "/")
	}
	return a.render(c, http.StatusOK, views.Signup(a.page(c, "Sign up", ""), views.Form{}))
}

func (a *App) signup(c echo.Context) error {
	vals := formValues(c, "email")
	password := c.FormValue("password")
	again := func(status int, f views.Form) error {
		f.Values = vals // the password is never sent back
		return a.render(c, status, views.Signup(a.page(c, "Sign up", ""), f))
	}
	// A form with mistakes costs no hash, so it is not counted.
	if err := models.ValidateSignup(vals["email"], password); err != nil {
		fields, msg, _ := fieldErrors(err)
		return again(http.StatusUnprocessableEntity, views.Form{Errors: fields, Message: msg})
	}
	wait, limited, err := countAttempt(c.Request().Context(), counted{a.forms.signupPerIP, c.RealIP()})
	if err != nil {
		return err
	}
	if limited {
		msg := fmt.Sprintf("Too many sign-ups from your network. Wait %d seconds, then try again.", waitSeconds(c, wait))
		return again(http.StatusTooManyRequests, views.Form{Message: msg})
	}
	u, err := a.Store.CreateAccountBy(c.Request().Context(), vals["email"], password, actor(c))
	if fields, msg, ok := fieldErrors(err); ok {
		return again(statusOfFormError(err), views.Form{Errors: fields, Message: msg})
	}
	if err != nil {
		return busyOr(c, err)
	}
	if err := a.startSession(c, u.ID, u.AccountID); err != nil {
		return err
	}
	if err := a.trustDevice(c, u.ID); err != nil {
		return err
	}
	// The account works without it; the banner offers to send it again.
	if err := a.mailVerifyLink(c.Request().Context(), u); err != nil {
		a.Log.Error("sign-up: the confirmation link was not queued", "request_id", RequestID(c), "err", err.Error())
	}
	a.flash(c, "Welcome to TT Console. Your account is ready.")
	return c.Redirect(http.StatusSeeOther, "/")
}

func (a *App) loginPage(c echo.Context) error {
	if currentUser(c) != nil {
		return c.Redirect(http.StatusSeeOther, "/")
	}
	f := views.Form{Values: map[string]string{"next": safeNext(c.QueryParam("next"))}}
	return a.render(c, http.StatusOK, views.Login(a.page(c, "Log in", ""), f))
}

func (a *App) login(c echo.Context) error {
	vals := formValues(c, "email", "next")
	vals["next"] = safeNext(vals["next"])
	password := c.FormValue("password")
	if wait, limited, err := a.loginThrottled(c, vals["email"]); err != nil {
		return err
	} else if limited {
		msg := fmt.Sprintf("Too many login attempts. Wait %d seconds, then try again.", waitSeconds(c, wait))
		return a.render(c, http.StatusTooManyRequests,
			views.Login(a.page(c, "Log in", ""), views.Form{Values: vals, Message: msg}))
	}
	u, err := a.Store.Authenticate(c.Request().Context(), vals["email"], password)
	if err != nil {
		if models.ErrorCode(err) != models.EUNAUTHORIZED {
			return busyOr(c, err)
		}
		return a.render(c, http.StatusUnauthorized,
			views.Login(a.page(c, "Log in", ""), views.Form{Values: vals, Message: models.ErrBadCredentials.Message}))
	}
	home, err := a.Store.HomeAccount(c.Request().Context(), u)
	if err != nil {
		return err
	}
	if err := a.startSession(c, u.ID, home); err != nil {
		return err
	}
	if err := a.trustDevice(c, u.ID); err != nil {
		return err
	}
	if home != "" { // the account signed in to; a member of none has no log to write to
		if err := a.audit(c, models.AuditEntry{AccountID: home, Actor: u.Email, ActorUserID: &u.ID,
			Action: models.AuditSignedIn, Target: u.ID, TargetLabel: u.Email}); err != nil {
			return err
		}
	}
	return c.Redirect(http.StatusSeeOther, vals["next"])
}

func (a *App) logout(c echo.Context) error {
	if err := a.endSession(c); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/login")
}

func (a *App) accountPage(c echo.Context) error {
	return a.render(c, http.StatusOK, views.AccountSettings(a.page(c, "Your account", ""), currentUser(c).Email, views.Form{}))
}

func (a *App) changePassword(c echo.Context) error {
	u := currentUser(c)
	again := func(status int, f views.Form) error {
		return a.render(c, status, views.AccountSettings(a.page(c, "Your account", ""), u.Email, f))
	}
	wait, limited, err := countAttempt(c.Request().Context(),
		counted{a.forms.loginPerIP, c.RealIP()}, counted{a.forms.passwordPerUser, u.ID})
	if err != nil {
		return err
	}
	if limited {
		msg := fmt.Sprintf("Too many password attempts. Wait %d seconds, then try again.", waitSeconds(c, wait))
		return again(http.StatusTooManyRequests, views.Form{Message: msg})
	}
	token, _ := c.Get(ctxToken).(string)
	err = a.Store.ChangePassword(c.Request().Context(), u.ID, c.FormValue("current_password"),
		c.FormValue("new_password"), models.HashToken(token), actor(c))
	if fields, msg, ok := fieldErrors(err); ok {
		return again(statusOfFormError(err), views.Form{Errors: fields, Message: msg})
	}
	if err != nil {
		return busyOr(c, err)
	}
	a.flash(c, "Password changed. Every other session has been signed out.")
	return c.Redirect(http.StatusSeeOther, "/account")
}

// busyOr answers a form that found every password hashing slot taken for
// too long with the console's 503 page and when to come back; any other
// error goes on to the central handler.
func busyOr(c echo.Context, err error) error {
	if models.ErrorCode(err) != models.EUNAVAILABLE {
		return err
	}
	c.Response().Header().Set("Retry-After", itoa(int(math.Ceil(models.DefaultHashWait.Seconds()))))
	return err // 503, logged as busy rather than as an internal error
}
