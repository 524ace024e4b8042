package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
	"ttconsole/views"
)

// mailVerifyLink queues a link that confirms the user's email address.
func (a *App) mailVerifyLink(ctx context.Context, u *models.User) error {
	token, err := a.Store.NewUserToken(ctx, models.TokenVerify, u, models.VerifyLinkTTL)
	if err != nil {
		return err
	}
	return a.sendMail(ctx, u.Email, "Confirm your email address for TT Console", fmt.Sprintf(
		`Welcome to TT Console.

Please confirm that %s is your email address by opening this link within 7 days:

%s

If you did not create a TT Console account, ignore this mail.`,
		u.Email, a.link("/verify/"+token)))
}

// verifyEmail is where a confirmation link leads: it confirms the address
// and goes on to the console, or to log in.
func (a *App) verifyEmail(c echo.Context) error {
	u, err := a.Store.VerifyEmail(c.Request().Context(), c.Param("token"))
	if errors.Is(err, models.ErrLinkInvalid) {
		return a.linkInvalid(c, views.LinkVerify)
	}
	if err != nil {
		return err
	}
	a.flash(c, "Thank you: "+u.Email+" is confirmed.")
	if currentUser(c) == nil {
		return c.Redirect(http.StatusSeeOther, "/login")
	}
	return c.Redirect(http.StatusSeeOther, "/")
}

// resendVerification sends the signed-in user a new confirmation link,
// a few an hour at most, and returns to the page the banner was on.
func (a *App) resendVerification(c echo.Context) error {
	u := currentUser(c)
	back := localPath(c.FormValue("back"))
	if u.EmailVerifiedAt != nil {
		a.flash(c, "Your email address "+u.Email+" is confirmed already.")
		return c.Redirect(http.StatusSeeOther, back)
	}
	ctx := c.Request().Context()
	wait, limited, err := countAttempt(ctx, counted{a.forms.mailPerIP, c.RealIP()}, counted{a.forms.verifyPerUser, u.ID})
	if err != nil {
		return err
	}
	if limited {
		a.flash(c, fmt.Sprintf("We sent a link a moment ago: look for it in your mail (and your spam folder). "+
			"To ask for another, wait %s.", waitWords(waitSeconds(c, wait))))
		return c.Redirect(http.StatusSeeOther, back)
	}
	if err := a.mailVerifyLink(ctx, u); err != nil {
		return err
	}
	a.flash(c, "We sent a new link to "+u.Email+". It works for 7 days.")
	return c.Redirect(http.StatusSeeOther, back)
}
