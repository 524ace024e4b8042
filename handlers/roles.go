package handlers

import (
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
	"ttconsole/views"
)

// permission names what a console route lets a member do. Every console
// route in routes.go declares one, and a.may refuses the roles that
// roleTable does not give it.
type permission string

const (
	permView     permission = "view"     // read every page of the account
	permFix      permission = "fix"      // a request's fix-it actions
	permKeys     permission = "keys"     // change keys, and see the bodies they keep
	permBilling  permission = "billing"  // move money: recharges and billing settings
	permMembers  permission = "members"  // invite, change roles, remove
	permTransfer permission = "transfer" // give the account to another member
	permAudit    permission = "audit"    // read the audit log
	// permSelf is no role's: it is the person's own (their password,
	// switching between their accounts), open to every signed-in user,
	// even one who is a member of no account.
	permSelf permission = "self"
)

// roleRow is one line of roleTable.
type roleRow struct {
	perm  permission
	what  string   // the line's words in the README
	roles []string // the roles that hold the permission
	notes map[string]string
}

// roleTable is the one table of who may do what. a.may enforces it on
// every console route, pages hide what a role cannot use, and the README
// shows it as roleTableMarkdown renders it (a test keeps the two equal).
var roleTable = []roleRow{
	{perm: permView, what: "Read every page but the audit log; CSVs and charts",
		roles: models.Roles},
	{perm: permFix, what: "Fix-it actions on a request",
		roles: []string{models.RoleOwner, models.RoleAdmin, models.RoleDeveloper}},
	{perm: permKeys, what: "Keys: create, edit, disable, enable, revoke; kept bodies",
		roles: []string{models.RoleOwner, models.RoleAdmin, models.RoleDeveloper}},
	{perm: permBilling, what: "Billing: recharge, low-balance warning, payment re-check",
		roles: []string{models.RoleOwner, models.RoleAdmin, models.RoleBilling}},
	{perm: permMembers, what: "Members: invite, change role, remove, revoke invitation",
		roles: []string{models.RoleOwner, models.RoleAdmin}, notes: map[string]string{models.RoleAdmin: "not the owner"}},
	{perm: permTransfer, what: "Transfer ownership",
		roles: []string{models.RoleOwner}},
	{perm: permAudit, what: "Audit log, and its CSV",
		roles: []string{models.RoleOwner, models.RoleAdmin}},
}

func rowOf(p permission) roleRow {
	for _, r := range roleTable {
		if r.perm == p {
			return r
		}
	}
	return roleRow{perm: p} // no role holds a permission the table lacks
}

// allowed says whether role holds permission p.
func allowed(role string, p permission) bool {
	return p == permSelf || slices.Contains(rowOf(p).roles, role)
}

// roleTableMarkdown renders roleTable as the README shows it.
func roleTableMarkdown() string {
	var b strings.Builder
	b.WriteString("| |")
	for _, role := range models.Roles {
		b.WriteString(" " + role + " |")
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(models.Roles)) + "\n")
	for _, r := range roleTable {
		b.WriteString("| " + r.what + " |")
		for _, role := range models.Roles {
			switch {
			case !slices.Contains(r.roles, role):
				b.WriteString(" — |")
			case r.notes[role] != "":
				b.WriteString(" ✓ (" + r.notes[role] + ") |")
			default:
				b.WriteString(" ✓ |")
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// orList joins words as a sentence lists them: "a", "a or b", "a, b or c".
func orList(words []string) string {
	switch len(words) {
	case 0:
		return "no one"
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

const ctxMember = "member"

// currentMember is the signed-in user's place in the session's active
// account, or nil when the user works in no account.
func currentMember(c echo.Context) *models.AccountRole {
	m, _ := c.Get(ctxMember).(*models.AccountRole)
	return m
}

// currentAccount is the id of the account the console shows: the
// session's active account. Every page and action works in it alone.
func currentAccount(c echo.Context) string {
	if m := currentMember(c); m != nil {
		return m.AccountID
	}
	return ""
}

// currentRole is the signed-in user's role in the active account.
func currentRole(c echo.Context) string {
	if m := currentMember(c); m != nil {
		return m.Role
	}
	return ""
}

// can says whether the signed-in user's role holds p in the active account.
func can(c echo.Context, p permission) bool { return allowed(currentRole(c), p) }

// may lets a request through when the user's role in the active account
// holds p. Anyone else gets a 403 page naming the roles that may, and the
// handler never runs, so nothing changes. It follows requireUser.
func (a *App) may(p permission) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if p == permSelf {
				return next(c)
			}
			m := currentMember(c)
			if m == nil {
				return a.render(c, http.StatusForbidden, views.ErrorPage(a.page(c, "No account", ""), http.StatusForbidden,
					"You are not working in any account",
					"You are not a member of any account now. Ask an account's owner or admin for an invitation, "+
						"or switch to another of your accounts in the header."))
			}
			if !allowed(m.Role, p) {
				row := rowOf(p)
				msg := "This needs the role " + orList(row.roles) + " (" + row.what + "). Your role in " +
					m.AccountName + " is " + m.Role + "; ask its owner or an admin."
				return a.render(c, http.StatusForbidden, views.ErrorPage(a.page(c, "Not allowed", ""), http.StatusForbidden,
					"Your role cannot do this", msg))
			}
			return next(c)
		}
	}
}

// consoleRoutes registers the console's signed-in routes, each with the
// permission it needs, and keeps which permission each has (for the test
// that walks every route with every role).
type consoleRoutes struct {
	e     *echo.Echo
	a     *App
	chain []echo.MiddlewareFunc
}

func (r consoleRoutes) add(method, path string, h echo.HandlerFunc, p permission) {
	r.e.Add(method, path, h, append(r.chain[:len(r.chain):len(r.chain)], r.a.may(p))...)
	if r.a.routePerms == nil {
		r.a.routePerms = map[string]permission{}
	}
	r.a.routePerms[method+" "+path] = p
}

func (r consoleRoutes) GET(path string, h echo.HandlerFunc, p permission) {
	r.add(http.MethodGet, path, h, p)
}

func (r consoleRoutes) POST(path string, h echo.HandlerFunc, p permission) {
	r.add(http.MethodPost, path, h, p)
}
