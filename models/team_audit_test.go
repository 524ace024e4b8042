package models_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// TestTeamChangesAndTheirAuditEntriesCommitTogether: each change to a
// team, and auto top-up's settings, write their audit entry in their own
// transaction, so when the entry cannot be written the change is not made
// either — an invitation, a join, a role, a removal, a revoked invitation,
// a transfer, auto top-up turned on — and once it can, the change and its
// entry are both there.
func TestTeamChangesAndTheirAuditEntriesCommitTogether(t *testing.T) {
	db := testenv.DB(t)
	s := models.NewStore(db)
	ctx := context.Background()
	now := time.Now()
	owner, err := s.CreateAccount(ctx, "owner@example.com", testenv.Password)
	if err != nil {
		t.Fatal(err)
	}
	acct := owner.AccountID
	by := models.Actor{UserID: owner.ID, Name: owner.Email, IP: "198.51.100.7", RequestID: "req_team"}
	_, token, err := s.Invite(ctx, by, acct, "dev@example.com", models.RoleDeveloper, now)
	if err != nil {
		t.Fatal(err)
	}
	dev, _, err := s.SignupByInvitation(ctx, models.Actor{IP: "203.0.113.9"}, token, testenv.Password, now)
	if err != nil {
		t.Fatal(err)
	}
	pending, _, err := s.Invite(ctx, by, acct, "later@example.com", models.RoleViewer, now)
	if err != nil {
		t.Fatal(err)
	}

	exec := func(q string) {
		t.Helper()
		if err := db.Writer().Exec(q).Error; err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if testenv.Postgres() {
		exec(`CREATE FUNCTION audit_down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit log down'; END $$`)
		exec(`CREATE TRIGGER audit_down BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_down()`)
	} else {
		exec(`CREATE TRIGGER audit_down BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log down'); END`)
	}
	state := func() string {
		t.Helper()
		members, err := s.Members(ctx, acct)
		if err != nil {
			t.Fatal(err)
		}
		invs, err := s.OpenInvitations(ctx, acct)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, m := range members {
			fmt.Fprintf(&b, "%s=%s ", m.Email, m.Role)
		}
		for _, i := range invs {
			fmt.Fprintf(&b, "invited:%s ", i.Email)
		}
		return b.String()
	}
	before := state()
	for name, change := range map[string]func() error{
		"invite": func() error {
			_, _, err := s.Invite(ctx, by, acct, "new@example.com", models.RoleViewer, now)
			return err
		},
		"change a role": func() error { return s.SetMemberRole(ctx, by, acct, models.RoleOwner, dev.ID, models.RoleAdmin) },
		"remove":        func() error { return s.RemoveMember(ctx, by, acct, models.RoleOwner, dev.ID) },
		"revoke": func() error {
			_, err := s.RevokeInvitation(ctx, by, acct, pending.ID, now)
			return err
		},
		"transfer": func() error { return s.TransferOwnership(ctx, by, acct, dev.ID) },
	} {
		if err := change(); err == nil || !strings.Contains(err.Error(), "audit log down") {
			t.Fatalf("%s without its audit entry: %v, want the audit log's error", name, err)
		}
		if got := state(); got != before {
			t.Fatalf("%s failed but changed the team: %s, was %s", name, got, before)
		}
	}

	// Auto top-up's settings too: they stay off.
	on := models.TopupConfig{Enabled: true, ThresholdMicros: 5 * models.MicrosPerUSD, AmountMicros: 20 * models.MicrosPerUSD,
		CapMicros: 100 * models.MicrosPerUSD}
	if err := s.SaveTopup(ctx, by, acct, on, models.TopupConfig{}); err == nil || !strings.Contains(err.Error(), "audit log down") {
		t.Fatalf("auto top-up saved without its audit entry: %v", err)
	}
	if p, err := s.BillingProfileOf(ctx, acct); err != nil || p.TopupEnabled {
		t.Fatalf("auto top-up is on (%v) though saving it failed", err)
	}

	if testenv.Postgres() {
		exec(`DROP TRIGGER audit_down ON audit_log`)
		exec(`DROP FUNCTION audit_down()`)
	} else {
		exec(`DROP TRIGGER audit_down`)
	}
	if err := s.SetMemberRole(ctx, by, acct, models.RoleOwner, dev.ID, models.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if err := s.TransferOwnership(ctx, by, acct, dev.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveTopup(ctx, by, acct, on, models.TopupConfig{}); err != nil {
		t.Fatal(err)
	}
	entries, _, err := s.AuditLog(ctx, acct, models.AuditFilter{}, 50)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, fmt.Sprintf("%s %s %s→%s by %s from %s", e.Action, e.TargetLabel, e.Before, e.After, e.Actor, e.IP))
	}
	for _, want := range []string{
		"member.invited dev@example.com →developer by owner@example.com from 198.51.100.7",
		"member.joined dev@example.com →developer by dev@example.com from 203.0.113.9",
		"member.role_changed dev@example.com developer→admin by owner@example.com from 198.51.100.7",
		"account.ownership_transferred dev@example.com owner@example.com→dev@example.com by owner@example.com from 198.51.100.7",
		"billing.auto_topup  off→When available balance drops below $5.00, add $20.00 (at most $100.00 a month) by owner@example.com from 198.51.100.7",
	} {
		if !strings.Contains(strings.Join(got, "\n"), want) {
			t.Errorf("the audit log lacks %q:\n%s", want, strings.Join(got, "\n"))
		}
	}
}
