package handlers

import (
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
	"ttconsole/views"
)

const msgUnknownInvitation = "This invitation link is not valid. Check that you copied all of it, or ask for a new invitation."

// invitationPage answers an invitation's link: a new person chooses a
// password, someone with a login is asked to log in, the invited user
// signed in accepts with one button. A link that is unknown, used,
// expired or revoked says so.
func (a *App) invitationPage(c echo.Context) error {
	d, err := a.Store.InvitationByToken(c.Request().Context(), c.Param("token"))
	if err != nil {
		return a.invitationProblem(c, err)
	}
	return a.renderInvitation(c, http.StatusOK, d, views.Form{})
}

// invitationProblem renders the page of a link that cannot be used.
func (a *App) invitationProblem(c echo.Context, err error) error {
	switch models.ErrorCode(err) {
	case models.ENOTFOUND:
		return a.render(c, http.StatusNotFound, views.InvitationPage(a.page(c, "Invitation", ""),
			views.InvitationData{State: "closed", Problem: msgUnknownInvitation}))
	case models.ECONFLICT:
		return a.render(c, http.StatusGone, views.InvitationPage(a.page(c, "Invitation", ""),
			views.InvitationData{State: "closed", Problem: err.Error()}))
	}
	return err
}

// renderInvitation renders an invitation's page for whoever opens it.
func (a *App) renderInvitation(c echo.Context, status int, d *models.InvitationDetail, f views.Form) error {
	if st := d.State(a.now()); st != models.InvitationOpen {
		return a.invitationProblem(c, models.InvitationClosed(st))
	}
	v := views.InvitationData{Token: c.Param("token"), Account: d.AccountName, Role: d.Role, Email: d.Email,
		Inviter: d.InviterEmail, Form: f}
	u := currentUser(c)
	switch {
	case u == nil && !d.UserExists:
		v.State = "signup"
	case u == nil:
		v.State = "login"
	case u.Email != d.Email:
		v.State = "other"
	default:
		v.State = "accept"
		_, err := a.Store.RoleIn(c.Request().Context(), d.AccountID, u.ID)
		if err == nil {
			v.State = "member"
		} else if models.ErrorCode(err) != models.ENOTFOUND {
			return err
		}
	}
	return a.render(c, status, views.InvitationPage(a.page(c, "Join "+d.AccountName, ""), v))
}

// now is the time invitations are checked against: the system's, or the
// App's Clock (an instance whose clock is ahead, in a test).
func (a *App) now() time.Time {
	if a.Clock != nil {
		return a.Clock().UTC()
	}
	return time.Now().UTC()
}

// acceptInvitation joins the invitation's account: the invited user,
// signed in, with a click; a new person by choosing a password, which
// creates their login (with no account of its own). Either way the
// session then works in the account joined.
func (a *App) acceptInvitation(c echo.Context) error {
	ctx := c.Request().Context()
	token := c.Param("token")
	if u := currentUser(c); u != nil {
		d, err := a.Store.AcceptInvitation(ctx, actor(c), token, u, a.now())
		if models.ErrorCode(err) == models.EFORBIDDEN {
			return a.render(c, http.StatusForbidden, views.ErrorPage(a.page(c, "Not allowed", ""), http.StatusForbidden,
				"This invitation is for someone else", err.Error()))
		}
		if err != nil {
			return a.invitationProblem(c, err)
		}
		sess, _ := c.Get(ctxToken).(string)
		if _, err := a.Store.SwitchAccount(ctx, sess, u.ID, d.AccountID); err != nil {
			return err
		}
		a.flash(c, "You joined "+d.AccountName+" with the role "+d.Role+".")
		return c.Redirect(http.StatusSeeOther, "/")
	}

	d, err := a.Store.InvitationByToken(ctx, token)
	if err != nil {
		return a.invitationProblem(c, err)
	}
	wait, limited, err := countAttempt(ctx, counted{a.forms.signupPerIP, c.RealIP()})
	if err != nil {
		return err
	}
	if limited {
		msg := fmt.Sprintf("Too many sign-ups from your network. Wait %d seconds, then try again.", waitSeconds(c, wait))
		return a.renderInvitation(c, http.StatusTooManyRequests, d, views.Form{Message: msg})
	}
	u, d, err := a.Store.SignupByInvitation(ctx, actor(c), token, c.FormValue("password"), a.now())
	if models.ErrorCode(err) == models.EINVALID {
		fields, msg, _ := fieldErrors(err)
		again, rerr := a.Store.InvitationByToken(ctx, token)
		if rerr != nil {
			return a.invitationProblem(c, rerr)
		}
		return a.renderInvitation(c, http.StatusUnprocessableEntity, again, views.Form{Errors: fields, Message: msg})
	}
	if models.ErrorCode(err) == models.ECONFLICT {
		// Used, expired or revoked meanwhile, or the email signed up since:
		// the page shows whichever it is now.
		again, rerr := a.Store.InvitationByToken(ctx, token)
		if rerr != nil {
			return a.invitationProblem(c, rerr)
		}
		return a.renderInvitation(c, http.StatusConflict, again, views.Form{Message: err.Error()})
	}
	if err != nil {
		return busyOr(c, err)
	}
	if err := a.startSession(c, u.ID, d.AccountID); err != nil {
		return err
	}
	if err := a.trustDevice(c, u.ID); err != nil {
		return err
	}
	a.flash(c, "Welcome to TT Console. You joined "+d.AccountName+" with the role "+d.Role+".")
	return c.Redirect(http.StatusSeeOther, "/")
}
