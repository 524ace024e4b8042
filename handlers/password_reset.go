package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
	"ttconsole/views"
)

func (a *App) forgotPage(c echo.Context) error {
	return a.render(c, http.StatusOK, views.ForgotPassword(a.page(c, "Reset your password", ""), views.Form{}, false))
}

// forgotPassword answers every well-formed address with the same words,
// in the same time: whether an account uses it is looked up, and its link
// made and queued, after the answer (startPasswordReset), so neither the
// page nor its timing tells.
func (a *App) forgotPassword(c echo.Context) error {
	vals := formValues(c, "email")
	again := func(status int, f views.Form) error {
		f.Values = vals
		return a.render(c, status, views.ForgotPassword(a.page(c, "Reset your password", ""), f, false))
	}
	if msg := models.EmailProblem(vals["email"]); msg != "" {
		return again(http.StatusUnprocessableEntity, views.Form{Errors: map[string]string{"email": msg}})
	}
	email := models.NormalizeEmail(vals["email"])
	wait, limited, err := countAttempt(c.Request().Context(),
		counted{a.forms.mailPerIP, c.RealIP()}, counted{a.forms.resetPerEmail, email})
	if err != nil {
		return err
	}
	if limited {
		msg := fmt.Sprintf("Too many reset links asked for. Wait %s, then try again.", waitWords(waitSeconds(c, wait)))
		return again(http.StatusTooManyRequests, views.Form{Message: msg})
	}
	vals["email"] = email
	err = a.renderThen(c, http.StatusOK, views.ForgotPassword(a.page(c, "Reset your password", ""), views.Form{Values: vals}, true),
		func() { a.startPasswordReset(email, RequestID(c)) })
	return err
}

// startPasswordReset mails a reset link to the user with this email, if
// there is one, in the background, a moment after the answer has gone, so
// that work does not compete with the answer for the processor either. A
// stopping server finishes it first (Close waits); a crash in the moment
// after the answer loses the link, and asking again sends one.
func (a *App) startPasswordReset(email, requestID string) {
	a.tasks.Add(1)
	time.AfterFunc(10*time.Millisecond, func() {
		defer a.tasks.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(a.background), 30*time.Second)
		defer cancel()
		if err := a.mailResetLink(ctx, email); err != nil {
			a.Log.Error("password reset: the link was not queued", "request_id", requestID, "err", err.Error())
		}
	})
}

func (a *App) mailResetLink(ctx context.Context, email string) error {
	u, err := a.Store.UserByEmail(ctx, email)
	if models.ErrorCode(err) == models.ENOTFOUND {
		return nil
	}
	if err != nil {
		return err
	}
	token, err := a.Store.NewUserToken(ctx, models.TokenReset, u, models.ResetLinkTTL)
	if err != nil {
		return err
	}
	return a.sendMail(ctx, u.Email, "Reset your TT Console password", fmt.Sprintf(
		`Someone (we hope you) asked to reset the password of the TT Console account %s.

To choose a new password, open this link within 30 minutes:

%s

The link works once. Setting a new password signs you out everywhere.

If you did not ask, ignore this mail: your password stays as it is.`,
		u.Email, a.link("/password/reset/"+token)))
}

func (a *App) resetPage(c echo.Context) error {
	token := c.Param("token")
	u, err := a.Store.ResetLinkUser(c.Request().Context(), token)
	if errors.Is(err, models.ErrLinkInvalid) {
		return a.linkInvalid(c, views.LinkReset)
	}
	if err != nil {
		return err
	}
	return a.render(c, http.StatusOK, views.ResetPassword(a.page(c, "Choose a new password", ""), resetAction(token), u.Email, views.Form{}))
}

// resetPassword sets the new password, uses the link and ends every
// session of the user, then sends the browser to log in.
func (a *App) resetPassword(c echo.Context) error {
	ctx := c.Request().Context()
	token := c.Param("token")
	again := func(status int, f views.Form) error {
		u, err := a.Store.ResetLinkUser(ctx, token)
		if errors.Is(err, models.ErrLinkInvalid) {
			return a.linkInvalid(c, views.LinkReset)
		}
		if err != nil {
			return err
		}
		return a.render(c, status, views.ResetPassword(a.page(c, "Choose a new password", ""), resetAction(token), u.Email, f))
	}
	// A password that does go costs a hash, so it counts like a login.
	wait, limited, err := countAttempt(ctx, counted{a.forms.loginPerIP, c.RealIP()})
	if err != nil {
		return err
	}
	if limited {
		msg := fmt.Sprintf("Too many attempts. Wait %s, then try again.", waitWords(waitSeconds(c, wait)))
		return again(http.StatusTooManyRequests, views.Form{Message: msg})
	}
	u, err := a.Store.ResetPassword(ctx, token, c.FormValue("password"))
	if errors.Is(err, models.ErrLinkInvalid) {
		return a.linkInvalid(c, views.LinkReset)
	}
	if fields, msg, ok := fieldErrors(err); ok {
		return again(statusOfFormError(err), views.Form{Errors: fields, Message: msg})
	}
	if err != nil {
		return busyOr(c, err)
	}
	// This browser's session, if it had one, is gone with the others.
	if err := a.endSession(c); err != nil {
		return err
	}
	a.flash(c, "Your password is set, and every session of "+u.Email+" is signed out. Log in with the new password.")
	return c.Redirect(http.StatusSeeOther, "/login")
}

// linkInvalid answers a link from a mail that no longer works: 410, with
// the way to a new one.
func (a *App) linkInvalid(c echo.Context, kind string) error {
	return a.render(c, http.StatusGone, views.LinkInvalid(a.page(c, "Link no longer valid", ""), kind))
}

// waitWords is a wait in seconds as a message says it: "40 seconds",
// "1 minute", "12 minutes".
func waitWords(secs int) string {
	switch {
	case secs == 1:
		return "1 second"
	case secs < 90:
		return fmt.Sprintf("%d seconds", secs)
	case secs < 150:
		return "2 minutes"
	}
	return fmt.Sprintf("%d minutes", (secs+59)/60)
}

// resetAction is where a reset link's form posts: the link itself.
func resetAction(token string) string { return "/password/reset/" + url.PathEscape(token) }
