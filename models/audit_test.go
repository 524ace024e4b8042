package models_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// TestVersion19MakesKeyEventsTheAuditLog writes key events at version 18
// (a member's edits, the admin CLI's key, a status change, bodies kept
// and deleted) and migrates to 19: each event is an audit entry with the
// same time and order, the right action, the member found again by
// email, the key's name; key_events is gone; the key's page reads them;
// and the way down puts them back.
func TestVersion19MakesKeyEventsTheAuditLog(t *testing.T) {
	db, p := migratedTo(t, 18)
	ctx := context.Background()
	base := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	exec := func(q string, args ...any) {
		t.Helper()
		if err := db.Writer().Exec(q, args...).Error; err != nil {
			t.Fatal(err)
		}
	}
	exec(`INSERT INTO accounts (id, name, created_at) VALUES ('acct_1', 'one', ?)`, base)
	exec(`INSERT INTO users (id, account_id, email, password_hash, created_at, password_changed_at)
		VALUES ('user_1', 'acct_1', 'ada@example.com', 'x', ?, ?)`, base, base)
	exec(`INSERT INTO api_keys (id, account_id, name, secret_hash, prefix, last4, created_at)
		VALUES ('key_1', 'acct_1', 'production', 'h', 'sk-tt-abcd', 'wxyz', ?)`, base)
	events := []struct{ actor, field, was, is string }{
		{"admin cli", "created", "", "sk-tt-abcd…wxyz"},
		{"ada@example.com", "rpm", "60", "120"},
		{"ada@example.com", "status", "active", "disabled"},
		{"ada@example.com", "status", "disabled", "active"},
		{"ada@example.com", "keep_bodies", "not kept", "kept 3 days"},
		{"ada@example.com", "kept_bodies", "2 calls", "deleted"},
		{"gone@example.com", "status", "active", "revoked"},
	}
	var ulids []string
	for i, e := range events {
		at := base.Add(time.Duration(i) * time.Minute)
		u := ulid.MustNew(ulid.Timestamp(at), ulid.DefaultEntropy()).String()
		ulids = append(ulids, u)
		exec(`INSERT INTO key_events (id, key_id, account_id, actor, field, old_value, new_value, created_at)
			VALUES (?, 'key_1', 'acct_1', ?, ?, ?, ?, ?)`, "kev_"+u, e.actor, e.field, e.was, e.is, at)
	}
	if _, err := p.ApplyVersion(ctx, 19, true); err != nil {
		t.Fatal(err)
	}
	if db.Writer().Migrator().HasTable("key_events") {
		t.Fatal("key_events is still there")
	}
	s := models.NewStore(db)
	got, _, err := s.AuditLog(ctx, "acct_1", models.AuditFilter{Target: "key_1"}, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ action, actor, user, field, was, is string }{
		{models.AuditKeyRevoked, "gone@example.com", "", "status", "active", "revoked"},
		{models.AuditKeyBodiesDeleted, "ada@example.com", "user_1", "kept_bodies", "2 calls", "deleted"},
		{models.AuditKeyKeepBodies, "ada@example.com", "user_1", "keep_bodies", "not kept", "kept 3 days"},
		{models.AuditKeyEnabled, "ada@example.com", "user_1", "status", "disabled", "active"},
		{models.AuditKeyDisabled, "ada@example.com", "user_1", "status", "active", "disabled"},
		{models.AuditKeyUpdated, "ada@example.com", "user_1", "rpm", "60", "120"},
		{models.AuditKeyCreated, "admin CLI", "", "", "", "sk-tt-abcd…wxyz"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		user := ""
		if g.ActorUserID != nil {
			user = *g.ActorUserID
		}
		n := len(want) - 1 - i
		if g.ID != "aud_"+ulids[n] || !g.At.Equal(base.Add(time.Duration(n)*time.Minute)) || g.Action != w.action ||
			g.Actor != w.actor || user != w.user || g.Field != w.field || g.Before != w.was || g.After != w.is ||
			g.TargetLabel != "production" || g.AccountID != "acct_1" {
			t.Errorf("entry %d: %+v (user %q), want %+v at %s", i, g, user, w, base.Add(time.Duration(n)*time.Minute))
		}
	}
	// A new entry comes before the copied ones.
	if _, err := s.SetAPIKeyStatus(ctx, "acct_1", "key_1", models.AdminCLI, models.KeyActionDisable); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.AuditLog(ctx, "acct_1", models.AuditFilter{}, 1); len(got) != 1 || got[0].Action != models.AuditKeyDisabled {
		t.Fatalf("newest entry %+v", got)
	}

	if _, err := p.DownTo(ctx, 18); err != nil {
		t.Fatal(err)
	}
	var back []struct {
		ID, Actor, Field, OldValue, NewValue string
	}
	if err := db.Writer().Raw(`SELECT id, actor, field, old_value, new_value FROM key_events ORDER BY id`).Scan(&back).Error; err != nil {
		t.Fatal(err)
	}
	if len(back) != len(events)+1 || back[len(events)].Actor != "admin cli" || back[len(events)].NewValue != "disabled" {
		t.Fatalf("down: %d key events, want %d", len(back), len(events))
	}
	for i, e := range events {
		if b := back[i]; b.ID != "kev_"+ulids[i] || b.Actor != e.actor || b.Field != e.field || b.OldValue != e.was || b.NewValue != e.is {
			t.Errorf("down: event %d is %+v, want %+v", i, b, e)
		}
	}
	if db.Writer().Migrator().HasTable("audit_log") {
		t.Fatal("the way down left audit_log")
	}
}

// auditRow writes an entry of the log as it was at a given time: id and
// time from at.
func auditRow(t *testing.T, s *models.Store, acct string, at time.Time, user, actor, action string) string {
	t.Helper()
	id := "aud_" + ulid.MustNew(ulid.Timestamp(at), ulid.DefaultEntropy()).String()
	var uid any
	if user != "" {
		uid = user
	}
	err := s.DB().Writer().Exec(`INSERT INTO audit_log (id, account_id, at, actor_user_id, actor, action, target)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, id, acct, at, uid, actor, action, "key_x").Error
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestAuditLogPagesAndFilters writes 130 entries of one account over two
// days, by two members and the admin CLI, and a few of another account:
// the log reads newest first in pages that neither skip nor repeat an
// entry, each filter keeps exactly its entries, and the other account's
// never appear.
func TestAuditLogPagesAndFilters(t *testing.T) {
	s := models.NewStore(testenv.DB(t))
	ctx := context.Background()
	base := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Millisecond)
	actors := []struct{ user, name string }{{"user_a", "ada@example.com"}, {"user_b", "bob@example.com"}, {"", models.ActorAdminCLI}}
	actions := []string{models.AuditKeyCreated, models.AuditKeyUpdated, models.AuditLowBalanceChanged}
	type row struct {
		id, user, actor, action string
		at                      time.Time
	}
	var rows []row
	for i := range 130 {
		at := base.Add(time.Duration(i) * 20 * time.Minute)
		a := actors[i%3]
		r := row{user: a.user, actor: a.name, action: actions[(i/2)%len(actions)], at: at}
		if i%5 == 0 {
			r.action = models.AuditSignedIn
		}
		r.id = auditRow(t, s, "acct_a", at, r.user, r.actor, r.action)
		rows = append(rows, r)
	}
	for i := range 5 {
		auditRow(t, s, "acct_b", base.Add(time.Duration(i)*time.Hour), "user_e", "eve@example.com", models.AuditKeyCreated)
	}
	slices.Reverse(rows) // newest first

	read := func(f models.AuditFilter, limit int) ([]string, int) {
		t.Helper()
		var ids []string
		pages := 0
		for {
			got, next, err := s.AuditLog(ctx, "acct_a", f, limit)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, e := range got {
				if e.AccountID != "acct_a" {
					t.Fatalf("another account's entry: %+v", e)
				}
				ids = append(ids, e.ID)
			}
			if next == "" {
				return ids, pages
			}
			if pages > 20 {
				t.Fatal("the pages never end")
			}
			f.Cursor = next
		}
	}
	expect := func(keep func(row) bool) []string {
		var out []string
		for _, r := range rows {
			if keep(r) {
				out = append(out, r.id)
			}
		}
		return out
	}
	from, to := base.Add(10*time.Hour), base.Add(30*time.Hour)
	for _, c := range []struct {
		name string
		f    models.AuditFilter
		keep func(row) bool
	}{
		{"everything", models.AuditFilter{}, func(row) bool { return true }},
		{"one action", models.AuditFilter{Action: models.AuditSignedIn}, func(r row) bool { return r.action == models.AuditSignedIn }},
		{"one member", models.AuditFilter{Actor: "user_b"}, func(r row) bool { return r.user == "user_b" }},
		{"the admin CLI", models.AuditFilter{Actor: models.ActorAdminCLI}, func(r row) bool { return r.user == "" }},
		{"a time range", models.AuditFilter{From: from, To: to}, func(r row) bool { return !r.at.Before(from) && r.at.Before(to) }},
		{"all at once", models.AuditFilter{Actor: "user_a", Action: models.AuditSignedIn, From: from},
			func(r row) bool { return r.user == "user_a" && r.action == models.AuditSignedIn && !r.at.Before(from) }},
	} {
		want := expect(c.keep)
		got, pages := read(c.f, 50)
		if !slices.Equal(got, want) {
			t.Errorf("%s: %d entries\n%v\nwant %d\n%v", c.name, len(got), got, len(want), want)
		}
		if wantPages := max(1, (len(want)+49)/50); pages != wantPages {
			t.Errorf("%s: %d pages of 50, want %d", c.name, pages, wantPages)
		}
	}
	// Another account's member is no one here.
	if got, _ := read(models.AuditFilter{Actor: "user_e"}, 50); len(got) != 0 {
		t.Errorf("eve's entries through the filter: %v", got)
	}

	who, err := s.AuditActors(ctx, "acct_a")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(who) != "[{user_a ada@example.com} {user_b bob@example.com} {admin CLI admin CLI}]" {
		t.Errorf("actors %v", who)
	}
}

// TestParseAuditFilter: a bad date, an unknown action, a range that ends
// before it starts and a forged cursor are each a message for its field,
// and the filter keeps the good values.
func TestParseAuditFilter(t *testing.T) {
	for _, c := range []struct {
		query  string
		fields []string
	}{
		{"action=key.created&from=2026-01-02&to=2026-01-03", nil},
		{"from=yesterday", []string{"from"}},
		{"to=2026-13-45", []string{"to"}},
		{"action=key.deleted", []string{"action"}},
		{"from=2026-01-03&to=2026-01-02", []string{"to"}},
		{"cursor=req_01JABCDEFGHJKMNPQRSTVWXYZ0", []string{"cursor"}},
		{"actor=" + strings.Repeat("x", 201), []string{"actor"}},
	} {
		q, _ := url.ParseQuery(c.query)
		f, err := models.ParseAuditFilter(q)
		var got []string
		if me, ok := err.(*models.Error); ok {
			for k := range me.Fields {
				got = append(got, k)
			}
		} else if err != nil {
			t.Fatalf("%s: %v", c.query, err)
		}
		if !slices.Equal(got, c.fields) {
			t.Errorf("%s: fields %v, want %v", c.query, got, c.fields)
		}
		if c.fields == nil && (f.Action != models.AuditKeyCreated || !f.To.Equal(time.Date(2026, 1, 4, 0, 0, 0, 0, time.UTC))) {
			t.Errorf("%s: %+v", c.query, f)
		}
	}
}
