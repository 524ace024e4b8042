package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"ttconsole/handlers"
	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// TestInviteNewPersonJoins follows an invitation from the Team page to a
// new person's first page: the link is shown and mailed, the person picks
// a password on it, joins with the role given, and gets no account of
// their own. The link then works no more.
func TestInviteNewPersonJoins(t *testing.T) {
	srv, logs := newLoggedServer(t)
	acct := testenv.FundedKey(t, srv.Store, "owner@example.com", models.MicrosPerUSD, models.KeyInput{Name: "k", RPM: "60"})
	tm := &team{t: t, srv: srv, acct: acct.ID}
	owner := tm.signIn("owner@example.com")

	res, page := owner.post("/team", "/team/invitations", url.Values{"email": {" Dev@Example.com "}, "role": {"developer"}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("invite: %d %s", res.StatusCode, page)
	}
	link := invitationPath(t, page)
	// The outbox's worker writes the mail to the log a moment later.
	eventually(t, 5*time.Second, "the invitation mailed to dev@example.com with its link", func() bool {
		return strings.Contains(logs.String(), link) && strings.Contains(logs.String(), `"to":"dev@example.com"`)
	})
	// Once sent, the outbox keeps who was mailed what, not the link: the
	// database holds the invitation's token only as a hash.
	token := strings.TrimPrefix(link, "/invitations/")
	eventually(t, 5*time.Second, "the mail marked sent and its text forgotten", func() bool {
		ms := outbox(t, srv, "dev@example.com")
		return len(ms) == 1 && ms[0].SentAt != nil && ms[0].Subject != "" &&
			!strings.Contains(ms[0].TextBody+ms[0].HTMLBody, token) && ms[0].TextBody == "" && ms[0].HTMLBody == ""
	})
	defer func() {
		// The request lines of the link's visits keep only the token's start.
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, `"msg":"request"`) && strings.Contains(line, link) {
				t.Errorf("a request line logs the invitation's token: %s", line)
			}
		}
		if !strings.Contains(logs.String(), `"path":"`+link[:len("/invitations/")+8]+`…"`) {
			t.Error("no request line for the link's visits")
		}
	}()
	_, team := owner.get("/team")
	if row := testenv.Doc(t, team).Find(`[data-testid=invitations] tr[data-email="dev@example.com"]`); row.Length() != 1 ||
		!strings.Contains(row.Text(), "developer") {
		t.Errorf("the Team page does not list the open invitation for dev@example.com as developer")
	}
	if strings.Contains(team, link) {
		t.Error("the Team page shows the invitation's link again; it is shown once")
	}

	dev := newBrowser(t, srv)
	res, page = dev.get(link)
	if res.StatusCode != http.StatusOK || !strings.Contains(page, "Join owner@example.com as developer") ||
		testenv.Doc(t, page).Find(`form[data-testid=invitation-signup] input[name=password]`).Length() != 1 {
		t.Fatalf("the link's page for a new person: %d\n%s", res.StatusCode, page)
	}
	// A short password is answered beside the field and creates nothing.
	res, page = dev.post(link, link, url.Values{"password": {"short"}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "at least 10 characters") {
		t.Fatalf("short password: %d\n%s", res.StatusCode, page)
	}
	if registered(t, srv, "dev@example.com") != 0 {
		t.Fatal("a refused password created the user")
	}
	res, _ = dev.post(link, link, url.Values{"password": {testenv.Password}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		t.Fatalf("join: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	_, home := dev.get("/")
	if got := headerRole(t, home); got != "developer" {
		t.Errorf("the header shows the role %q, want developer", got)
	}
	u, err := srv.Store.UserByEmail(context.Background(), "dev@example.com")
	if err != nil {
		t.Fatal(err)
	}
	accounts, err := srv.Store.AccountsOf(context.Background(), u.ID)
	if err != nil || len(accounts) != 1 || accounts[0].AccountID != acct.ID || accounts[0].Role != "developer" {
		t.Fatalf("the new person's accounts: %+v %v, want only owner@'s as developer", accounts, err)
	}

	// Single use: the link is spent, for anyone.
	other := newBrowser(t, srv)
	res, page = other.get(link)
	if res.StatusCode != http.StatusGone || !strings.Contains(page, "already been used") {
		t.Errorf("a used link: %d\n%s", res.StatusCode, page)
	}
	res, page = other.post("/login", link, url.Values{"password": {"another long password"}})
	if res.StatusCode != http.StatusGone || registered(t, srv, "dev@example.com") != 1 {
		t.Errorf("posting a used link: %d\n%s", res.StatusCode, page)
	}
}

// TestInviteExistingUserAccepts: someone with a login of their own is
// asked to log in first, lands back on the link, accepts, and then works
// in the account joined, with their own account a switch away.
func TestInviteExistingUserAccepts(t *testing.T) {
	srv := testenv.NewServer(t)
	a := testenv.FundedKey(t, srv.Store, "owner@example.com", 0, models.KeyInput{Name: "k", RPM: "60"})
	b := testenv.FundedKey(t, srv.Store, "bob@example.com", 0, models.KeyInput{Name: "k", RPM: "60"})
	tm := &team{t: t, srv: srv, acct: a.ID}
	owner := tm.signIn("owner@example.com")
	_, page := owner.post("/team", "/team/invitations", url.Values{"email": {"bob@example.com"}, "role": {"billing"}})
	link := invitationPath(t, page)

	bob := newBrowser(t, srv)
	res, page := bob.get(link)
	login := testenv.Doc(t, page).Find(`[data-testid=invitation] a[href^="/login?next="]`)
	if res.StatusCode != http.StatusOK || login.Length() != 1 || !strings.Contains(page, "Log in first") {
		t.Fatalf("an existing user signed out is not told to log in: %d\n%s", res.StatusCode, page)
	}
	href, _ := login.Attr("href")
	next, _ := url.ParseQuery(strings.TrimPrefix(href, "/login?"))
	res, _ = bob.post(href, "/login", url.Values{"email": {"bob@example.com"}, "password": {testenv.Password}, "next": {next.Get("next")}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != link {
		t.Fatalf("login with next: %d to %q, want back to the link", res.StatusCode, res.Header.Get("Location"))
	}
	// Posting without a password, signed in, accepts: nothing is created.
	res, page = bob.get(link)
	if res.StatusCode != http.StatusOK || !strings.Contains(page, "Join owner@example.com as billing") ||
		testenv.Doc(t, page).Find(`form[data-testid=invitation-accept]`).Length() != 1 {
		t.Fatalf("signed in, the link's page: %d\n%s", res.StatusCode, page)
	}
	res, _ = bob.post(link, link, nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("accept: %d", res.StatusCode)
	}
	_, home := bob.get("/")
	if got := headerRole(t, home); got != "billing" {
		t.Errorf("after accepting, the header shows %q, want billing (in owner@'s account)", got)
	}
	u, _ := srv.Store.UserByEmail(context.Background(), "bob@example.com")
	if roleOf(t, srv, a.ID, u.ID) != "billing" || roleOf(t, srv, b.ID, u.ID) != "owner" {
		t.Errorf("bob's roles: %q in the account joined, %q in his own", roleOf(t, srv, a.ID, u.ID), roleOf(t, srv, b.ID, u.ID))
	}
	// His own account is one switch away.
	res, _ = bob.post("/", "/switch", url.Values{"account": {b.ID}})
	_, home = bob.get("/")
	if res.StatusCode != http.StatusSeeOther || headerRole(t, home) != "owner" {
		t.Errorf("switch back to his own account: %d, role %q", res.StatusCode, headerRole(t, home))
	}
}

// TestInvitationForSomeoneElse: the link is for one email; signed in as
// another, it can be read but not accepted.
func TestInvitationForSomeoneElse(t *testing.T) {
	srv := testenv.NewServer(t)
	a := testenv.FundedKey(t, srv.Store, "owner@example.com", 0, models.KeyInput{Name: "k", RPM: "60"})
	testenv.FundedKey(t, srv.Store, "eve@example.com", 0, models.KeyInput{Name: "k", RPM: "60"})
	tm := &team{t: t, srv: srv, acct: a.ID}
	owner := tm.signIn("owner@example.com")
	_, page := owner.post("/team", "/team/invitations", url.Values{"email": {"bob@example.com"}, "role": {"admin"}})
	link := invitationPath(t, page)

	eve := tm.signIn("eve@example.com")
	if _, page := eve.get(link); !strings.Contains(page, "this invitation is for bob@example.com") {
		t.Errorf("signed in as someone else, the page does not say whom the link is for:\n%s", page)
	}
	res, _ := eve.post(link, link, nil)
	u, _ := srv.Store.UserByEmail(context.Background(), "eve@example.com")
	if res.StatusCode != http.StatusForbidden || roleOf(t, srv, a.ID, u.ID) != "" {
		t.Fatalf("eve accepting bob's invitation: %d, role %q", res.StatusCode, roleOf(t, srv, a.ID, u.ID))
	}
	// The invitation is still bob's to use.
	if _, page := newBrowser(t, srv).get(link); !strings.Contains(page, "Choose a password") {
		t.Error("after eve's attempt the invitation no longer works for bob")
	}
}

// TestInvitationExpiredRevokedUnknown: every link that cannot be used
// says why on a page of its own, and joins no one.
func TestInvitationExpiredRevokedUnknown(t *testing.T) {
	tm := newTeamOf(t, "owner@example.com")
	srv, owner := tm.srv, tm.signIn("owner@example.com")
	ctx := context.Background()

	// Expired: the same database served by an instance whose clock is a
	// week and a minute ahead.
	_, token, err := srv.Store.Invite(ctx, memberActor(t, srv, tm.ownerID), tm.acct, "late@example.com", "viewer", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	later := testenv.NewServerOn(t, srv.DB, testenv.Options{Adjust: func(a *handlers.App) {
		a.Clock = func() time.Time { return time.Now().Add(models.InvitationTTL + time.Minute) }
	}})
	visitor := newBrowser(t, later)
	res, page := visitor.get("/invitations/" + token)
	if res.StatusCode != http.StatusGone || !strings.Contains(page, "expired") {
		t.Errorf("expired link: %d\n%s", res.StatusCode, page)
	}
	res, _ = visitor.post("/login", "/invitations/"+token, url.Values{"password": {testenv.Password}})
	if res.StatusCode != http.StatusGone || registered(t, srv, "late@example.com") != 0 {
		t.Errorf("joining by an expired link: %d", res.StatusCode)
	}
	// An expired invitation is listed as such, and makes room for a new
	// one to the same address.
	ownerLater := newBrowser(t, later)
	ownerLater.login("owner@example.com", testenv.Password)
	_, page = ownerLater.get("/team")
	if row := testenv.Doc(t, page).Find(`tr[data-email="late@example.com"]`); !strings.Contains(row.Text(), "expired") {
		t.Errorf("the Team page does not mark the invitation expired: %q", row.Text())
	}
	res, again := ownerLater.post("/team", "/team/invitations", url.Values{"email": {"late@example.com"}, "role": {"viewer"}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("inviting again after expiry: %d\n%s", res.StatusCode, again)
	}
	if res, page := newBrowser(t, later).get("/invitations/" + token); res.StatusCode != http.StatusGone || !strings.Contains(page, "expired") {
		t.Errorf("the old link after a new invitation: %d, want it still reported expired\n%s", res.StatusCode, page)
	}
	// The new link works, on the instance whose clock is right too.
	if res, _ := newBrowser(t, srv).get(invitationPath(t, again)); res.StatusCode != http.StatusOK {
		t.Errorf("the new invitation's link: %d", res.StatusCode)
	}

	// Revoked from the Team page.
	_, page = owner.post("/team", "/team/invitations", url.Values{"email": {"gone@example.com"}, "role": {"developer"}})
	link := invitationPath(t, page)
	invs, err := srv.Store.OpenInvitations(ctx, tm.acct)
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for _, i := range invs {
		if i.Email == "gone@example.com" {
			id = i.ID
		}
	}
	res, _ = owner.post("/team", "/team/invitations/"+id+"/revoke", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", res.StatusCode)
	}
	res, page = newBrowser(t, srv).get(link)
	if res.StatusCode != http.StatusGone || !strings.Contains(page, "revoked") {
		t.Errorf("revoked link: %d\n%s", res.StatusCode, page)
	}
	res, _ = newBrowser(t, srv).post("/login", link, url.Values{"password": {testenv.Password}})
	if res.StatusCode != http.StatusGone || registered(t, srv, "gone@example.com") != 0 {
		t.Errorf("joining by a revoked link: %d", res.StatusCode)
	}

	// Unknown, and malformed.
	for _, path := range []string{"/invitations/" + strings.Repeat("ab", 32), "/invitations/%00'--", "/invitations/" + strings.Repeat("x", 5000)} {
		res, page := newBrowser(t, srv).get(path)
		if res.StatusCode != http.StatusNotFound || !strings.Contains(page, "not valid") {
			t.Errorf("%.40s: %d\n%s", path, res.StatusCode, page)
		}
	}
}

// newTeamOf makes an account for email, without the other roles.
func newTeamOf(t *testing.T, email string) *team {
	t.Helper()
	srv := testenv.NewServer(t)
	acct := testenv.FundedKey(t, srv.Store, email, models.MicrosPerUSD, models.KeyInput{Name: "k", RPM: "60"})
	u, err := srv.Store.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return &team{t: t, srv: srv, acct: acct.ID, key: acct, ownerID: u.ID, ids: map[string]string{email: u.ID}}
}

// TestInviteFormMessages: each mistake is answered beside its field and
// nothing is recorded.
func TestInviteFormMessages(t *testing.T) {
	tm := newTeamOf(t, "owner@example.com")
	owner := tm.signIn("owner@example.com")
	tm.join("dev@example.com", "developer")
	if _, _, err := tm.srv.Store.Invite(context.Background(), memberActor(t, tm.srv, tm.ownerID), tm.acct, "pending@example.com", "viewer", time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		email, role, field, want string
		status                   int
	}{
		{"", "viewer", "email", "Enter an email address", http.StatusUnprocessableEntity},
		{"not an email", "viewer", "email", "valid email address", http.StatusUnprocessableEntity},
		{"a@b.c", "emperor", "role", "Choose one of the roles", http.StatusUnprocessableEntity},
		{"a@b.c", "owner", "role", "transfer ownership", http.StatusUnprocessableEntity},
		{"a@b.c", "", "role", "Choose a role", http.StatusUnprocessableEntity},
		{"DEV@example.com", "viewer", "email", "already a member", http.StatusConflict},
		{"owner@example.com", "admin", "email", "already a member", http.StatusConflict},
		{"pending@example.com", "admin", "email", "already has an open invitation", http.StatusConflict},
	} {
		before := snapshot(t, tm.srv, tm.acct, tm.ids)
		res, page := owner.post("/team", "/team/invitations", url.Values{"email": {c.email}, "role": {c.role}})
		msg := testenv.Doc(t, page).Find(`.field-error[data-field=` + c.field + `]`).Text()
		if res.StatusCode != c.status || !strings.Contains(msg, c.want) {
			t.Errorf("invite %q as %q: %d, %s message %q; want %d and %q", c.email, c.role, res.StatusCode, c.field, msg, c.status, c.want)
		}
		if testenv.FieldValue(t, page, "email") != c.email {
			t.Errorf("invite %q: the form lost what was typed", c.email)
		}
		if after := snapshot(t, tm.srv, tm.acct, tm.ids); after != before {
			t.Errorf("invite %q as %q was refused but changed the account", c.email, c.role)
		}
	}
}

// TestLastOwnerStays: the owner can be neither removed nor demoted, by an
// admin (403) or by themself (told to transfer first); an admin cannot
// make anyone owner. The account keeps exactly one owner throughout.
func TestLastOwnerStays(t *testing.T) {
	tm := newTeamOf(t, "owner@example.com")
	adminID := tm.join("admin@example.com", "admin")
	devID := tm.join("dev@example.com", "developer")
	owner, admin := tm.signIn("owner@example.com"), tm.signIn("admin@example.com")
	owners := func() int {
		t.Helper()
		ms, err := tm.srv.Store.Members(context.Background(), tm.acct)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, m := range ms {
			if m.Role == "owner" {
				n++
			}
		}
		return n
	}
	before := snapshot(t, tm.srv, tm.acct, tm.ids)
	for _, c := range []struct {
		who    *browser
		path   string
		vals   url.Values
		status int
		want   string
	}{
		{admin, "/team/members/" + tm.ownerID + "/remove", nil, http.StatusForbidden, "an admin cannot remove"},
		{admin, "/team/members/" + tm.ownerID, url.Values{"role": {"viewer"}}, http.StatusForbidden, "an admin cannot change the role of"},
		{admin, "/team/members/" + tm.ownerID + "/transfer", nil, http.StatusForbidden, "needs the role owner"},
		{admin, "/team/members/" + devID, url.Values{"role": {"owner"}}, http.StatusUnprocessableEntity, "transfer ownership"},
		{owner, "/team/members/" + tm.ownerID + "/remove", nil, http.StatusSeeOther, ""},
		{owner, "/team/members/" + tm.ownerID, url.Values{"role": {"admin"}}, http.StatusSeeOther, ""},
	} {
		res, page := c.who.post("/team", c.path, c.vals)
		if res.StatusCode != c.status || !strings.Contains(page, c.want) {
			t.Errorf("POST %s %v: %d, want %d with %q\n%s", c.path, c.vals, res.StatusCode, c.status, c.want, page)
		}
		if owners() != 1 {
			t.Fatalf("after POST %s the account has %d owners", c.path, owners())
		}
	}
	// The owner's own attempts are explained on the Team page.
	_, page := owner.get("/team")
	if !strings.Contains(page, "Transfer ownership to another member first") {
		t.Errorf("the owner is not told to transfer ownership first:\n%s", page)
	}
	if after := snapshot(t, tm.srv, tm.acct, tm.ids); after != before {
		t.Error("the refused changes to the owner changed the account")
	}
	// The owner's row offers no remove or role change, to anyone.
	for _, b := range []*browser{owner, admin} {
		_, page := b.get("/team")
		row := testenv.Doc(t, page).Find(`tr[data-member="` + tm.ownerID + `"]`)
		if row.Find(`[data-testid=member-remove], [data-testid=member-role-save]`).Length() != 0 {
			t.Error("the owner's row offers to remove them or change their role")
		}
	}

	// A transfer moves ownership in one step: still one owner.
	if res, _ := owner.post("/team", "/team/members/"+adminID+"/transfer", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("transfer: %d", res.StatusCode)
	}
	if owners() != 1 || roleOf(t, tm.srv, tm.acct, adminID) != "owner" || roleOf(t, tm.srv, tm.acct, tm.ownerID) != "admin" {
		t.Fatalf("after the transfer: %d owners; new %q, old %q", owners(),
			roleOf(t, tm.srv, tm.acct, adminID), roleOf(t, tm.srv, tm.acct, tm.ownerID))
	}
	// The former owner, now an admin, cannot take it back.
	if res, _ := owner.post("/team", "/team/members/"+tm.ownerID+"/transfer", nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("the former owner transferring again: %d, want 403", res.StatusCode)
	}
}

// TestRemovingAMemberEndsTheirSessions: a removed member's next request
// in the account finds no session; their sessions in their other
// accounts go on.
func TestRemovingAMemberEndsTheirSessions(t *testing.T) {
	tm := newTeamOf(t, "owner@example.com")
	own := testenv.FundedKey(t, tm.srv.Store, "dev@example.com", 0, models.KeyInput{Name: "k", RPM: "60"})
	devUser, _ := tm.srv.Store.UserByEmail(context.Background(), "dev@example.com")
	inv, token, err := tm.srv.Store.Invite(context.Background(), memberActor(t, tm.srv, tm.ownerID), tm.acct, "dev@example.com", "developer", time.Now())
	if err != nil || inv == nil {
		t.Fatal(err)
	}
	if _, err := tm.srv.Store.AcceptInvitation(context.Background(), models.Actor{}, token, devUser, time.Now()); err != nil {
		t.Fatal(err)
	}
	owner := tm.signIn("owner@example.com")
	inTeam := tm.signIn("dev@example.com") // starts in dev's own account…
	if res, _ := inTeam.post("/", "/switch", url.Values{"account": {tm.acct}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("switch: %d", res.StatusCode)
	}
	inOwn := tm.signIn("dev@example.com") // …and stays there in this browser
	if _, page := inTeam.get("/keys"); headerRole(t, page) != "developer" {
		t.Fatal("the first browser does not work in the team account")
	}

	res, _ := owner.post("/team", "/team/members/"+devUser.ID+"/remove", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove: %d", res.StatusCode)
	}
	if res, _ := inTeam.get("/keys"); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
		t.Errorf("the removed member's session in the account: %d to %q, want sent to log in", res.StatusCode, res.Header.Get("Location"))
	}
	if res, page := inOwn.get("/keys"); res.StatusCode != http.StatusOK || headerRole(t, page) != "owner" {
		t.Errorf("the removed member's session in their own account: %d, role %q; it should go on", res.StatusCode, headerRole(t, page))
	}
	if roleOf(t, tm.srv, tm.acct, devUser.ID) != "" || roleOf(t, tm.srv, own.ID, devUser.ID) != "owner" {
		t.Error("removal took the wrong membership")
	}
	for _, s := range sessionsOf(t, tm.srv, "dev@example.com") {
		if s.AccountID == tm.acct {
			t.Errorf("a session of the removed member still works in the account: %+v", s)
		}
	}
}

// TestSwitchIsolatesAccounts: a member of A cannot switch to B, nor see
// B's requests from A; one's own accounts switch, and each shows only
// its own keys and requests.
func TestSwitchIsolatesAccounts(t *testing.T) {
	srv := testenv.NewServer(t)
	a := testenv.FundedKey(t, srv.Store, "alice@example.com", models.MicrosPerUSD, models.KeyInput{Name: "alice key", RPM: "60"})
	b := testenv.FundedKey(t, srv.Store, "bob@example.com", models.MicrosPerUSD, models.KeyInput{Name: "bob key", RPM: "60"})
	_, _, idB := apiCall(t, srv, b.Secret, 16)
	_, _, idA := apiCall(t, srv, a.Secret, 16)
	tm := &team{t: t, srv: srv, acct: a.ID}
	alice := tm.signIn("alice@example.com")

	before := snapshot(t, srv, a.ID, nil) + snapshot(t, srv, b.ID, nil)
	for _, acct := range []string{b.ID, "acct_nonexistent", ""} {
		res, page := alice.post("/", "/switch", url.Values{"account": {acct}})
		if res.StatusCode != http.StatusForbidden || !strings.Contains(page, "not a member of that account") {
			t.Errorf("alice switching to %q: %d\n%s", acct, res.StatusCode, page)
		}
	}
	if after := snapshot(t, srv, a.ID, nil) + snapshot(t, srv, b.ID, nil); after != before {
		t.Error("a refused switch changed something")
	}
	if res, _ := alice.get("/requests/" + idB); res.StatusCode != http.StatusNotFound {
		t.Errorf("B's request from A: %d, want 404", res.StatusCode)
	}
	if res, _ := alice.get("/requests/" + idA); res.StatusCode != http.StatusOK {
		t.Errorf("A's own request: %d", res.StatusCode)
	}
	if res, _ := alice.get("/keys/" + b.Key.ID); res.StatusCode != http.StatusNotFound {
		t.Errorf("B's key from A: %d, want 404", res.StatusCode)
	}

	// Bob invites alice; once she accepts, she switches between the two,
	// and each account shows only its own.
	_, token, err := srv.Store.Invite(context.Background(), memberActor(t, srv, mustUser(t, srv, "bob@example.com")), b.ID, "alice@example.com", "viewer", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := alice.post("/", "/invitations/"+token, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("accept: %d", res.StatusCode)
	}
	_, page := alice.get("/requests")
	if !strings.Contains(page, idB) || strings.Contains(page, idA) || headerRole(t, page) != "viewer" {
		t.Errorf("in B, alice's Requests page: B's call shown %v, A's shown %v, role %q",
			strings.Contains(page, idB), strings.Contains(page, idA), headerRole(t, page))
	}
	switcher := testenv.Doc(t, page).Find(`[data-testid=account-switcher] button[name=account]`)
	if v, _ := switcher.Attr("value"); switcher.Length() != 1 || v != a.ID {
		t.Errorf("the switcher offers %d accounts (%q), want alice's own", switcher.Length(), v)
	}
	if res, _ := alice.post("/", "/switch", url.Values{"account": {a.ID}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("switch back: %d", res.StatusCode)
	}
	if res, _ := alice.get("/requests/" + idB); res.StatusCode != http.StatusNotFound {
		t.Errorf("back in A, B's request: %d, want 404", res.StatusCode)
	}
	if _, page := alice.get("/keys"); !strings.Contains(page, "alice key") || strings.Contains(page, "bob key") {
		t.Error("back in A, the Keys page shows another account's keys")
	}
}

func mustUser(t *testing.T, srv *testenv.Server, email string) string {
	t.Helper()
	u, err := srv.Store.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// TestRolesShowOnlyTheirButtons: the pages hide what a role cannot do,
// and show kept bodies only to the roles that manage keys.
func TestRolesShowOnlyTheirButtons(t *testing.T) {
	tm := newTeam(t)
	ctx := context.Background()
	k, secret, err := tm.srv.Store.CreateAPIKey(ctx, tm.acct, models.AdminCLI,
		models.KeyInput{Name: "kept", RPM: "60", KeepBodies: "on", KeepBodiesDays: "3"})
	if err != nil {
		t.Fatal(err)
	}
	_, _, id := apiCall(t, tm.srv, secret, 16)
	keptBodies(t, tm.srv, tm.acct, id)
	for _, role := range models.Roles {
		b := tm.as[role]
		_, billing := b.get("/billing")
		_, keys := b.get("/keys")
		_, key := b.get("/keys/" + k.ID)
		_, team := b.get("/team")
		_, detail := b.get("/requests/" + id)
		has := func(page, sel string) bool { return testenv.Doc(t, page).Find(sel).Length() > 0 }
		for _, c := range []struct {
			what  string
			shown bool
			want  bool
		}{
			{"recharge buttons", has(billing, `form[action="/billing/recharge"]`), role == "owner" || role == "admin" || role == "billing"},
			{"low-balance form", has(billing, `form[action="/billing/low-balance"]`), role == "owner" || role == "admin" || role == "billing"},
			{"create-key form", has(keys, `form[data-testid=key-form]`), role == "owner" || role == "admin" || role == "developer"},
			{"key actions", has(key, `[data-testid=key-revoke]`), role == "owner" || role == "admin" || role == "developer"},
			{"invite form", has(team, `form[data-testid=invite-form]`), role == "owner" || role == "admin"},
			{"member actions", has(team, `[data-testid=member-remove]`), role == "owner" || role == "admin"},
			{"transfer", has(team, `[data-testid=member-transfer]`), role == "owner"},
			{"kept bodies", has(detail, `[data-testid=bodies]`), role == "owner" || role == "admin" || role == "developer"},
			{"the note on hidden bodies", has(detail, `[data-testid=bodies-hidden]`), role == "billing" || role == "viewer"},
		} {
			if c.shown != c.want {
				t.Errorf("%s sees the %s: %v, want %v", role, c.what, c.shown, c.want)
			}
		}
		if got := headerRole(t, team); got != role {
			t.Errorf("%s's header shows the role %q", role, got)
		}
	}
}

// TestMemberOfNoAccount: someone who joined by invitation and was removed
// belongs nowhere. They can still log in, see why the console is empty,
// change their password, and join again by a new invitation.
func TestMemberOfNoAccount(t *testing.T) {
	tm := newTeamOf(t, "owner@example.com")
	devID := tm.join("dev@example.com", "developer")
	owner := tm.signIn("owner@example.com")
	if res, _ := owner.post("/team", "/team/members/"+devID+"/remove", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove: %d", res.StatusCode)
	}
	dev := tm.signIn("dev@example.com")
	for _, path := range []string{"/", "/keys", "/billing", "/team"} {
		res, page := dev.get(path)
		if res.StatusCode != http.StatusForbidden || !strings.Contains(page, "not a member of any account") {
			t.Errorf("%s for a member of no account: %d\n%s", path, res.StatusCode, page)
		}
	}
	if res, page := dev.get("/account"); res.StatusCode != http.StatusOK || !strings.Contains(page, "dev@example.com") {
		t.Errorf("/account for a member of no account: %d", res.StatusCode)
	}
	_, page := owner.post("/team", "/team/invitations", url.Values{"email": {"dev@example.com"}, "role": {"viewer"}})
	link := invitationPath(t, page)
	if res, _ := dev.post(link, link, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("accept again: %d", res.StatusCode)
	}
	if res, page := dev.get("/keys"); res.StatusCode != http.StatusOK || headerRole(t, page) != "viewer" {
		t.Errorf("after joining again: %d, role %q", res.StatusCode, headerRole(t, page))
	}
}

// memberActor is the member with user id, as the console records their
// changes.
func memberActor(t *testing.T, srv *testenv.Server, id string) models.Actor {
	t.Helper()
	u, err := srv.Store.UserByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return models.Actor{UserID: u.ID, Name: u.Email}
}
