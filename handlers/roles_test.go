package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"ttconsole/handlers"
	"ttconsole/models"
)

// roleSpec is the issue's table of who may do what, written out here so
// that the code's table (handlers/roles.go) is checked against it, not
// against itself.
var roleSpec = map[string][]string{
	"view":     {"owner", "admin", "developer", "billing", "viewer"},
	"fix":      {"owner", "admin", "developer"},
	"keys":     {"owner", "admin", "developer"},
	"billing":  {"owner", "admin", "billing"},
	"members":  {"owner", "admin"},
	"transfer": {"owner"},
	"audit":    {"owner", "admin"},
	"self":     {"owner", "admin", "developer", "billing", "viewer"},
}

// consoleRoutePerms is every signed-in console route with the line of the
// table it belongs to. A route added without a line here fails
// TestRoleTableOnEveryRoute until someone decides who may use it.
var consoleRoutePerms = map[string]string{
	"GET /":                                   "view",
	"GET /account":                            "self",
	"POST /account/password":                  "self",
	"POST /switch":                            "self",
	"POST /verify/resend":                     "self",
	"GET /audit":                              "audit",
	"GET /audit.csv":                          "audit",
	"GET /requests":                           "view",
	"GET /requests.csv":                       "view",
	"GET /requests/chart.svg":                 "view",
	"GET /requests/count":                     "view",
	"GET /requests/:id":                       "view",
	"GET /usage":                              "view",
	"GET /usage.csv":                          "view",
	"POST /requests/:id/fix/allow-ip":         "fix",
	"POST /requests/:id/fix/add-model":        "fix",
	"POST /requests/:id/fix/raise-limit":      "fix",
	"GET /keys":                               "view",
	"POST /keys":                              "keys",
	"GET /keys/:id":                           "view",
	"POST /keys/:id":                          "keys",
	"POST /keys/:id/disable":                  "keys",
	"POST /keys/:id/enable":                   "keys",
	"POST /keys/:id/revoke":                   "keys",
	"POST /keys/:id/bodies/delete":            "keys",
	"GET /billing":                            "view",
	"POST /billing/recharge":                  "billing",
	"POST /billing/low-balance":               "billing",
	"GET /billing/payments/:id":               "view",
	"POST /billing/payments/:id/recheck":      "billing",
	"GET /billing/test-checkout/:session_id":  "billing",
	"POST /billing/test-checkout/:session_id": "billing",
	"POST /billing/payment-method":            "billing",
	"POST /billing/payment-method/remove":     "billing",
	"GET /billing/test-setup/:session_id":     "billing",
	"POST /billing/test-setup/:session_id":    "billing",
	"POST /billing/auto-topup":                "billing",
	"POST /billing/payments/:id/confirm":      "billing",
	"GET /billing/payments/:id/receipt":       "view",
	"POST /alerts/:id/dismiss":                "view",
	"GET /team":                               "view",
	"POST /team/invitations":                  "members",
	"POST /team/invitations/:id/revoke":       "members",
	"POST /team/members/:user_id":             "members",
	"POST /team/members/:user_id/remove":      "members",
	"POST /team/members/:user_id/transfer":    "transfer",
}

// publicRoute says whether a route is outside the role table: the
// gateway, webhooks, operations, static files, unknown paths, and the
// console's signed-out forms (an invitation's link is its own key).
func publicRoute(method, path string) bool {
	if method == "echo_route_not_found" || method == "RouteNotFound" {
		return true
	}
	for _, prefix := range []string{"/v1/", "/webhooks/", "/static/"} {
		if strings.HasPrefix(path, prefix) {
			return true
		}
	}
	switch method + " " + path {
	case "GET /healthz", "GET /readyz", "GET /metrics",
		"GET /signup", "POST /signup", "GET /login", "POST /login", "POST /logout", "POST /time-zone",
		"GET /invitations/:token", "POST /invitations/:token",
		"GET /password/forgot", "POST /password/forgot", "GET /password/reset/:token", "POST /password/reset/:token",
		"GET /verify/:token":
		return true
	}
	return false
}

// TestRoleTableMatchesTheIssue checks the code's table line by line.
func TestRoleTableMatchesTheIssue(t *testing.T) {
	for perm, roles := range roleSpec {
		for _, role := range models.Roles {
			if got, want := handlers.RoleAllows(role, perm), slices.Contains(roles, role); got != want {
				t.Errorf("%s may %s: %v, want %v", role, perm, got, want)
			}
		}
	}
}

// TestReadmeShowsTheRoleTable checks that the README's table is the one
// the code enforces.
func TestReadmeShowsTheRoleTable(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := handlers.RoleTableMarkdown(); !strings.Contains(string(readme), want) {
		t.Errorf("README.md does not show the role table the code enforces; put this in its place:\n\n%s", want)
	}
}

// TestRoleTableOnEveryRoute walks every console route with every role:
// the roles the table allows get an answer that is not 403; the others
// get the 403 page naming the roles that may, and the account is left
// exactly as it was.
func TestRoleTableOnEveryRoute(t *testing.T) {
	tm := newTeam(t)
	ctx := context.Background()
	srv := tm.srv

	// Calls each fix-it action is for, made with keys of their own.
	p := &platform{t: t, srv: srv, account: tm.acct}
	_, ipSecret := p.newKey(tm.acct, models.KeyInput{Name: "office only", AllowedIPs: "203.0.113.7", RPM: "600"})
	_, quotaSecret := p.newKey(tm.acct, models.KeyInput{Name: "capped", MonthlyLimitUSD: "0.01", RPM: "600"})
	reqIP := p.chat(ipSecret, 16, nil).id()
	reqScope := p.do("POST", "/v1/chat/completions", tm.key.Secret, chatBody("tt-chat-large", 16, nil)).id()
	reqQuota := p.chat(quotaSecret, 16384, nil).id()
	target, _ := p.newKey(tm.acct, models.KeyInput{Name: "to be changed", RPM: "600"})

	// A pending recharge, an open invitation, and members to act on.
	res, _ := tm.as["owner"].post("/billing", "/billing/recharge", url.Values{"amount_usd": {"10"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("recharge: %d", res.StatusCode)
	}
	pays, err := srv.Store.RecentPayments(ctx, tm.acct, 1)
	if err != nil || len(pays) != 1 || pays[0].SessionID == nil {
		t.Fatalf("the pending payment: %+v %v", pays, err)
	}
	payment, checkout := pays[0].ID, *pays[0].SessionID
	inv, _, err := srv.Store.Invite(ctx, memberActor(t, srv, tm.ownerID), tm.acct, "pending@example.com", "viewer", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	roleTarget := tm.join("role-target@example.com", "viewer")
	removeTarget := tm.join("remove-target@example.com", "viewer")
	transferTarget := tm.join("transfer-target@example.com", "viewer")

	params := map[string]string{
		"GET /requests/:id":                    reqScope,
		"POST /requests/:id/fix/allow-ip":      reqIP,
		"POST /requests/:id/fix/add-model":     reqScope,
		"POST /requests/:id/fix/raise-limit":   reqQuota,
		"POST /team/members/:user_id":          roleTarget,
		"POST /team/members/:user_id/remove":   removeTarget,
		"POST /team/members/:user_id/transfer": transferTarget,
	}
	form := func(route, role string) url.Values {
		switch route {
		case "POST /switch":
			return url.Values{"account": {tm.acct}}
		case "POST /account/password":
			return url.Values{"current_password": {"not the password"}, "new_password": {"another long password"}}
		case "POST /requests/:id/fix/raise-limit":
			return url.Values{"monthly_limit_usd": {"50"}}
		case "POST /keys", "POST /keys/:id":
			return url.Values{"name": {"key of " + role}, "rpm": {"60"}}
		case "POST /billing/recharge":
			return url.Values{"amount_usd": {"10"}}
		case "POST /billing/low-balance":
			return url.Values{"low_balance_usd": {"2"}}
		case "POST /billing/test-checkout/:session_id":
			return url.Values{"action": {"pay"}}
		case "POST /team/invitations":
			return url.Values{"email": {"new-" + role + "@example.com"}, "role": {"developer"}}
		case "POST /team/members/:user_id":
			return url.Values{"role": {"billing"}}
		}
		return url.Values{}
	}
	fill := func(route string) string {
		_, path, _ := strings.Cut(route, " ")
		path = strings.NewReplacer(":session_id", checkout, ":user_id", params[route]).Replace(path)
		switch {
		case strings.HasPrefix(path, "/keys/:id"):
			path = strings.Replace(path, ":id", target.ID, 1)
		case strings.HasPrefix(path, "/billing/payments/:id"):
			path = strings.Replace(path, ":id", payment, 1)
		case strings.HasPrefix(path, "/team/invitations/:id"):
			path = strings.Replace(path, ":id", inv.ID, 1)
		case strings.Contains(path, ":id"):
			path = strings.Replace(path, ":id", params[route], 1)
		}
		return path
	}

	var routes []string
	seen := map[string]bool{}
	for _, r := range srv.Echo.Routes() {
		if publicRoute(r.Method, r.Path) || seen[r.Method+" "+r.Path] {
			continue
		}
		route := r.Method + " " + r.Path
		seen[route] = true
		want, listed := consoleRoutePerms[route]
		declared, ok := srv.App.RoutePermission(r.Method, r.Path)
		switch {
		case !ok:
			t.Errorf("%s declares no permission: register it in routes.go with the one it needs", route)
			continue
		case !listed:
			t.Errorf("%s (permission %q) is not in this test's table: add it with the line of the role table it belongs to", route, declared)
			continue
		case declared != want:
			t.Errorf("%s needs %q, want %q", route, declared, want)
		}
		routes = append(routes, route)
	}
	for route := range consoleRoutePerms {
		if !seen[route] {
			t.Errorf("%s is in this test's table but not served", route)
		}
	}
	// The transfer goes last: it makes the owner an admin.
	slices.SortFunc(routes, func(a, b string) int {
		return cmpBool(strings.HasSuffix(a, "/transfer"), strings.HasSuffix(b, "/transfer"), a, b)
	})

	for _, route := range routes {
		method, _, _ := strings.Cut(route, " ")
		path := fill(route)
		perm := consoleRoutePerms[route]
		// The refused roles go first, on the state the action is for: after
		// an allowed role's turn, the same action may have nothing to change.
		roles := slices.Clone(models.Roles)
		slices.SortStableFunc(roles, func(a, b string) int {
			return cmpBool(slices.Contains(roleSpec[perm], a), slices.Contains(roleSpec[perm], b), "", "")
		})
		for _, role := range roles {
			b := tm.as[role]
			before := snapshot(t, srv, tm.acct, tm.ids)
			res, page := b.send(method, path, form(route, role))
			if slices.Contains(roleSpec[perm], role) {
				if res.StatusCode == http.StatusForbidden {
					t.Errorf("%s as %s (%s): 403, want it allowed:\n%s", route, role, path, page)
				}
				if loc := res.Header.Get("Location"); strings.HasPrefix(loc, "/login") {
					t.Errorf("%s as %s: sent to %s; the member's session ended", route, role, loc)
				}
				continue
			}
			if res.StatusCode != http.StatusForbidden {
				t.Errorf("%s as %s (%s): %d, want 403", route, role, path, res.StatusCode)
				continue
			}
			if !strings.Contains(page, "Your role cannot do this") || !strings.Contains(page, "needs the role "+roleWords(roleSpec[perm])) ||
				!strings.Contains(page, "is "+role) {
				t.Errorf("%s as %s: the 403 page does not name the roles that may and the member's:\n%s", route, role, page)
			}
			if after := snapshot(t, srv, tm.acct, tm.ids); after != before {
				t.Errorf("%s as %s was refused but changed the account:\nbefore %s\nafter  %s", route, role, before, after)
			}
		}
	}
	// The allowed actions did happen: the owner's transfer, for one.
	if got := roleOf(t, srv, tm.acct, transferTarget); got != models.RoleOwner {
		t.Errorf("after the owner's transfer the target is %q, want owner", got)
	}
	if got := roleOf(t, srv, tm.acct, tm.ownerID); got != models.RoleAdmin {
		t.Errorf("after the transfer the former owner is %q, want admin", got)
	}
}

func cmpBool(x, y bool, a, b string) int {
	switch {
	case x == y:
		return strings.Compare(a, b)
	case x:
		return 1
	}
	return -1
}

// roleWords lists roles as the 403 page does: "owner, admin or billing".
func roleWords(roles []string) string {
	if len(roles) == 1 {
		return roles[0]
	}
	return strings.Join(roles[:len(roles)-1], ", ") + " or " + roles[len(roles)-1]
}
