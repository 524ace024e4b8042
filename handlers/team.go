package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
	"ttconsole/views"
)

// teamPage lists the active account's members and open invitations.
func (a *App) teamPage(c echo.Context) error {
	return a.renderTeam(c, http.StatusOK, views.TeamData{})
}

// renderTeam renders the Team page around d, which carries any form sent
// back with its messages, or the invitation just made.
func (a *App) renderTeam(c echo.Context, status int, d views.TeamData) error {
	ctx := c.Request().Context()
	acct, me := currentAccount(c), currentUser(c)
	members, err := a.Store.Members(ctx, acct)
	if err != nil {
		return err
	}
	invs, err := a.Store.OpenInvitations(ctx, acct)
	if err != nil {
		return err
	}
	emails := map[string]string{}
	d.Account = currentMember(c).AccountName
	for _, m := range members {
		emails[m.UserID] = m.Email
		d.Members = append(d.Members, views.MemberRow{
			UserID: m.UserID, Email: m.Email, Role: m.Role, Joined: m.JoinedAt, You: m.UserID == me.ID,
			Managed:      can(c, permMembers) && m.Role != models.RoleOwner,
			Transferable: can(c, permTransfer) && m.Role != models.RoleOwner,
		})
	}
	now := a.now()
	for _, inv := range invs {
		by := emails[inv.InvitedBy]
		if by == "" {
			by = "a former member"
		}
		d.Invitations = append(d.Invitations, views.InvitationRow{ID: inv.ID, Email: inv.Email, Role: inv.Role, InvitedBy: by,
			Created: inv.CreatedAt, Expires: inv.ExpiresAt, Expired: inv.State(now) == models.InvitationExpired})
	}
	for _, r := range models.GrantableRoles {
		d.Roles = append(d.Roles, views.Option{Value: r, Label: models.RoleLabel(r)})
	}
	if d.Invite.Values == nil {
		d.Invite.Values = map[string]string{"role": models.RoleDeveloper}
	}
	return a.render(c, status, views.Team(a.page(c, "Team", "team"), d))
}

// invite records an invitation, mails its link and shows the link once
// on the Team page, so it can be passed on by hand too.
func (a *App) invite(c echo.Context) error {
	ctx := c.Request().Context()
	vals := formValues(c, "email", "role")
	inv, token, err := a.Store.Invite(ctx, actor(c), currentAccount(c), vals["email"], vals["role"], a.now())
	if fields, msg, ok := fieldErrors(err); ok {
		return a.renderTeam(c, statusOfFormError(err), views.TeamData{Invite: views.Form{Values: vals, Errors: fields, Message: msg}})
	}
	if err != nil {
		return err
	}
	account := currentMember(c).AccountName
	link := a.link("/invitations/" + token)
	text := currentUser(c).Email + " invites you to join the TT Console account " + account + " as " + inv.Role + ".\n\n" +
		"Open this link to accept (it works once, until " + inv.ExpiresAt.Format("2 Jan 2006 15:04 MST") + "):\n" + link + "\n"
	mailed := true
	if err := a.sendMail(ctx, inv.Email, "Join "+account+" on TT Console", text); err != nil {
		mailed = false
		a.Log.Warn("invitation mail", "request_id", RequestID(c), "invitation_id", inv.ID, "err", err.Error())
	}
	return a.renderTeam(c, http.StatusOK, views.TeamData{
		Created: &views.CreatedInvitation{Email: inv.Email, Role: inv.Role, Link: link, Mailed: mailed}})
}

// revokeInvitation closes an open invitation: its link stops working.
func (a *App) revokeInvitation(c echo.Context) error {
	inv, err := a.Store.RevokeInvitation(c.Request().Context(), actor(c), currentAccount(c), c.Param("id"), a.now())
	switch {
	case models.ErrorCode(err) == models.ECONFLICT:
		a.flash(c, err.Error())
	case err != nil:
		return err
	default:
		a.flash(c, "Invitation to "+inv.Email+" revoked: its link no longer works.")
	}
	return c.Redirect(http.StatusSeeOther, "/team")
}

// setMemberRole gives a member another role.
func (a *App) setMemberRole(c echo.Context) error {
	ctx := c.Request().Context()
	id, role := c.Param("user_id"), c.FormValue("role")
	err := a.Store.SetMemberRole(ctx, actor(c), currentAccount(c), currentRole(c), id, role)
	if models.ErrorCode(err) == models.EINVALID {
		fields, msg, _ := fieldErrors(err)
		return a.renderTeam(c, http.StatusUnprocessableEntity, views.TeamData{RoleFormOf: id,
			RoleForm: views.Form{Values: map[string]string{"role": role}, Errors: fields, Message: msg}})
	}
	if done, err := a.refusedChange(c, err); done {
		return err
	}
	m, err := a.Store.MemberOf(ctx, currentAccount(c), id)
	if err != nil {
		return err
	}
	a.flash(c, m.Email+" now has the role "+m.Role+".")
	return c.Redirect(http.StatusSeeOther, "/team")
}

// removeMember takes a member out of the account; their sessions in it end.
func (a *App) removeMember(c echo.Context) error {
	ctx := c.Request().Context()
	acct, id := currentAccount(c), c.Param("user_id")
	m, err := a.Store.MemberOf(ctx, acct, id)
	if err != nil {
		return err
	}
	err = a.Store.RemoveMember(ctx, actor(c), acct, currentRole(c), id)
	if done, err := a.refusedChange(c, err); done {
		return err
	}
	if id == currentUser(c).ID { // one's own session in the account has ended too
		return c.Redirect(http.StatusSeeOther, "/login")
	}
	a.flash(c, m.Email+" was removed from "+currentMember(c).AccountName+" and signed out of it.")
	return c.Redirect(http.StatusSeeOther, "/team")
}

// transferOwnership makes another member the owner; the owner becomes an admin.
func (a *App) transferOwnership(c echo.Context) error {
	ctx := c.Request().Context()
	acct, id := currentAccount(c), c.Param("user_id")
	m, err := a.Store.MemberOf(ctx, acct, id)
	if err != nil {
		return err
	}
	err = a.Store.TransferOwnership(ctx, actor(c), acct, id)
	if done, err := a.refusedChange(c, err); done {
		return err
	}
	a.flash(c, m.Email+" is now the owner of "+currentMember(c).AccountName+"; you are an admin.")
	return c.Redirect(http.StatusSeeOther, "/team")
}

// refusedChange answers a change to a member that failed, and says
// whether it did: a conflict (the owner acting on their own membership)
// is explained on the Team page; a role that may not act on the owner
// gets the 403 page; any other error goes to the central handler.
func (a *App) refusedChange(c echo.Context, err error) (bool, error) {
	switch {
	case err == nil:
		return false, nil
	case models.ErrorCode(err) == models.ECONFLICT:
		a.flash(c, err.Error())
		return true, c.Redirect(http.StatusSeeOther, "/team")
	case models.ErrorCode(err) == models.EFORBIDDEN:
		return true, a.render(c, http.StatusForbidden, views.ErrorPage(a.page(c, "Not allowed", "team"), http.StatusForbidden,
			"Your role cannot do this", err.Error()))
	}
	return true, err
}

// switchAccount makes another of the user's accounts the session's
// active one; an account the user is not a member of is refused.
func (a *App) switchAccount(c echo.Context) error {
	token, _ := c.Get(ctxToken).(string)
	ar, err := a.Store.SwitchAccount(c.Request().Context(), token, currentUser(c).ID, c.FormValue("account"))
	if models.ErrorCode(err) == models.EFORBIDDEN {
		return a.render(c, http.StatusForbidden, views.ErrorPage(a.page(c, "Not allowed", ""), http.StatusForbidden,
			"You cannot switch to that account", err.Error()))
	}
	if err != nil {
		return err
	}
	a.flash(c, "You are working in "+ar.AccountName+", with the role "+ar.Role+".")
	return c.Redirect(http.StatusSeeOther, "/")
}
