package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// team is an account with a member of every role, each signed in with a
// browser of their own.
type team struct {
	t       *testing.T
	srv     *testenv.Server
	acct    string // the account's id
	key     *testenv.Account
	ownerID string
	as      map[string]*browser // role → that member's browser
	ids     map[string]string   // email → user id
}

// newTeam makes owner@example.com's account, funded, with one key, and
// brings in admin@, developer@, billing@ and viewer@ by invitation.
func newTeam(t *testing.T) *team {
	t.Helper()
	srv := testenv.NewServer(t)
	acct := testenv.FundedKey(t, srv.Store, "owner@example.com", 5*models.MicrosPerUSD,
		models.KeyInput{Name: "production", Models: []string{"tt-chat-small"}, RPM: "600"})
	owner, err := srv.Store.UserByEmail(context.Background(), "owner@example.com")
	if err != nil {
		t.Fatal(err)
	}
	tm := &team{t: t, srv: srv, acct: acct.ID, key: acct, ownerID: owner.ID, as: map[string]*browser{},
		ids: map[string]string{"owner@example.com": owner.ID}}
	tm.as[models.RoleOwner] = tm.signIn("owner@example.com")
	for _, role := range models.GrantableRoles {
		tm.join(role+"@example.com", role)
		tm.as[role] = tm.signIn(role + "@example.com")
	}
	return tm
}

// join brings email into the team with role, as an invitation accepted
// by a new person does, and returns the new user's id.
func (tm *team) join(email, role string) string {
	tm.t.Helper()
	ctx := context.Background()
	_, token, err := tm.srv.Store.Invite(ctx, memberActor(tm.t, tm.srv, tm.ownerID), tm.acct, email, role, time.Now())
	if err != nil {
		tm.t.Fatal(err)
	}
	u, _, err := tm.srv.Store.SignupByInvitation(ctx, models.Actor{}, token, testenv.Password, time.Now())
	if err != nil {
		tm.t.Fatal(err)
	}
	tm.ids[email] = u.ID
	return u.ID
}

// signIn logs email in with a browser of its own.
func (tm *team) signIn(email string) *browser {
	tm.t.Helper()
	b := newBrowser(tm.t, tm.srv)
	if res, page := b.login(email, testenv.Password); res.StatusCode != http.StatusSeeOther {
		tm.t.Fatalf("log in %s: %d %s", email, res.StatusCode, page)
	}
	return b
}

// send makes one request as b: a GET, or a POST with the page's CSRF token.
func (b *browser) send(method, path string, vals url.Values) (*http.Response, string) {
	b.t.Helper()
	if method == http.MethodGet {
		return b.get(path)
	}
	if vals == nil {
		vals = url.Values{}
	}
	return b.post("/account", path, vals)
}

// roleOf reads the role a user holds in an account from the database.
func roleOf(t *testing.T, srv *testenv.Server, acct, userID string) string {
	t.Helper()
	ar, err := srv.Store.RoleIn(context.Background(), acct, userID)
	if models.ErrorCode(err) == models.ENOTFOUND {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return ar.Role
}

// snapshot is what an account holds, as JSON: keys and their history,
// kept bodies, wallet, ledger, payments, the low-balance warning, members,
// open invitations, and the sessions and accounts of every user named.
// A refused action must leave it exactly as it was.
func snapshot(t *testing.T, srv *testenv.Server, acct string, userIDs map[string]string) string {
	t.Helper()
	ctx := context.Background()
	s := srv.Store
	out := map[string]any{}
	must := func(name string, v any, err error) {
		t.Helper()
		if err != nil && models.ErrorCode(err) != models.ENOTFOUND {
			t.Fatalf("snapshot %s: %v", name, err)
		}
		out[name] = v
	}
	keys, err := s.APIKeysOf(ctx, acct)
	must("keys", keys, err)
	for _, k := range keys {
		n, err := s.KeptBodiesCount(ctx, acct, k.ID)
		must("bodies "+k.ID, n, err)
	}
	audit, _, err := s.AuditLog(ctx, acct, models.AuditFilter{}, 1000)
	must("audit log", audit, err)
	w, err := s.WalletOf(ctx, acct)
	must("wallet", w, err)
	led, err := s.LedgerPage(ctx, acct, "", 1000)
	must("ledger", led, err)
	pays, err := s.RecentPayments(ctx, acct, 1000)
	must("payments", pays, err)
	low, err := s.LowBalanceThreshold(ctx, acct)
	must("low balance", low, err)
	members, err := s.Members(ctx, acct)
	must("members", members, err)
	invs, err := s.OpenInvitations(ctx, acct)
	must("invitations", invs, err)
	for email, id := range userIDs {
		sess, err := s.SessionsOf(ctx, id)
		var kept []string
		for _, se := range sess {
			kept = append(kept, se.TokenHash+" in "+se.AccountID)
		}
		must("sessions "+email, kept, err)
		accts, err := s.AccountsOf(ctx, id)
		must("accounts "+email, accts, err)
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var invitationLink = regexp.MustCompile(`/invitations/[0-9a-f]{64}`)

// invitationPath finds the invitation link on a page and returns its path.
func invitationPath(t *testing.T, page string) string {
	t.Helper()
	p := invitationLink.FindString(page)
	if p == "" {
		t.Fatalf("no invitation link on the page:\n%s", page)
	}
	return p
}

// headerRole is the role the header's switcher shows.
func headerRole(t *testing.T, page string) string {
	t.Helper()
	return strings.TrimSpace(testenv.Doc(t, page).Find(`[data-testid=account-role]`).Text())
}
