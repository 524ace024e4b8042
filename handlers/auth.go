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
	vals := formValues(c, "email", "password")
	u, err := a.Store.CreateAccount(c.Request().Context(), vals["email"], vals["password"])
	if fields, msg, ok := fieldErrors(err); ok {
		delete(vals, "password")
		return a.render(c, statusOfFormError(err),
			views.Signup(a.page(c, "Sign up", ""), views.Form{Values: vals, Errors: fields, Message: msg}))
	}
	if err != nil {
		return err
	}
	if err := a.startSession(c, u.ID); err != nil {
		return err
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
		secs := int(math.Ceil(wait.Seconds()))
		c.Response().Header().Set("Retry-After", itoa(secs))
		msg := fmt.Sprintf("Too many login attempts. Wait %d seconds, then try again.", secs)
		return a.render(c, http.StatusTooManyRequests,
			views.Login(a.page(c, "Log in", ""), views.Form{Values: vals, Message: msg}))
	}
	u, err := a.Store.Authenticate(c.Request().Context(), vals["email"], password)
	if err != nil {
		if models.ErrorCode(err) != models.EUNAUTHORIZED {
			return err
		}
		return a.render(c, http.StatusUnauthorized,
			views.Login(a.page(c, "Log in", ""), views.Form{Values: vals, Message: models.ErrBadCredentials.Message}))
	}
	if err := a.startSession(c, u.ID); err != nil {
		return err
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
	token, _ := c.Get(ctxToken).(string)
	err := a.Store.ChangePassword(c.Request().Context(), u.ID, c.FormValue("current_password"),
		c.FormValue("new_password"), models.HashToken(token))
	if fields, msg, ok := fieldErrors(err); ok {
		return a.render(c, statusOfFormError(err),
			views.AccountSettings(a.page(c, "Your account", ""), u.Email, views.Form{Errors: fields, Message: msg}))
	}
	if err != nil {
		return err
	}
	a.flash(c, "Password changed. Every other session has been signed out.")
	return c.Redirect(http.StatusSeeOther, "/account")
}
