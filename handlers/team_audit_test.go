package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// TestAuditRecordsTeamChanges: inviting, revoking, joining, a role
// changed, a member removed and ownership given away are each in the
// account's audit log, by whoever did them, with the role before → after.
func TestAuditRecordsTeamChanges(t *testing.T) {
	tm := newTeam(t)
	ctx := context.Background()
	owner, admin := tm.as[models.RoleOwner], tm.as[models.RoleAdmin]
	one := func(action string) models.AuditEntry {
		t.Helper()
		rows, _, err := tm.srv.Store.AuditLog(ctx, tm.acct, models.AuditFilter{Action: action}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 {
			t.Fatalf("no %s in the audit log", action)
		}
		return rows[0]
	}
	check := func(e models.AuditEntry, actor, label, before, after string) {
		t.Helper()
		if e.Actor != actor || e.TargetLabel != label || e.Before != before || e.After != after || e.RequestID == "" {
			t.Errorf("%s: by %q about %q, %q → %q (request %q); want by %q about %q, %q → %q",
				e.Action, e.Actor, e.TargetLabel, e.Before, e.After, e.RequestID, actor, label, before, after)
		}
	}

	res, page := admin.post("/team", "/team/invitations", url.Values{"email": {"newcomer@example.com"}, "role": {"developer"}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("invite: %d", res.StatusCode)
	}
	check(one(models.AuditMemberInvited), "admin@example.com", "newcomer@example.com", "", "developer")

	// The newcomer signs up through the link: they joined, by themselves.
	b := newBrowser(t, tm.srv)
	link := invitationPath(t, page)
	if res, _ := b.post(link, link, url.Values{"password": {testenv.Password}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("join: %d", res.StatusCode)
	}
	check(one(models.AuditMemberJoined), "newcomer@example.com", "newcomer@example.com", "", "developer")

	res, page = owner.post("/team", "/team/invitations", url.Values{"email": {"late@example.com"}, "role": {"viewer"}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("invite: %d", res.StatusCode)
	}
	invs, err := tm.srv.Store.OpenInvitations(ctx, tm.acct)
	if err != nil || len(invs) != 1 {
		t.Fatalf("open invitations: %+v %v", invs, err)
	}
	if res, _ := owner.post("/team", "/team/invitations/"+invs[0].ID+"/revoke", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", res.StatusCode)
	}
	check(one(models.AuditInvitationRevoked), "owner@example.com", "late@example.com", "", "")

	viewer := tm.ids["viewer@example.com"]
	if res, _ := admin.post("/team", "/team/members/"+viewer, url.Values{"role": {"billing"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("change role: %d", res.StatusCode)
	}
	check(one(models.AuditMemberRoleChanged), "admin@example.com", "viewer@example.com", "viewer", "billing")

	if res, _ := admin.post("/team", "/team/members/"+viewer+"/remove", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove: %d", res.StatusCode)
	}
	check(one(models.AuditMemberRemoved), "admin@example.com", "viewer@example.com", "billing", "")

	dev := tm.ids["developer@example.com"]
	if res, _ := owner.post("/team", "/team/members/"+dev+"/transfer", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("transfer: %d", res.StatusCode)
	}
	check(one(models.AuditOwnershipTransferred), "owner@example.com", "developer@example.com", "owner@example.com", "developer@example.com")
}
