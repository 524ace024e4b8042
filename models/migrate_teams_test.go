package models_test

import (
	"context"
	"testing"
	"time"

	"ttconsole/models"
)

// TestTeamsMigrationKeepsEveryoneSignedIn writes accounts, users and
// sessions as the binaries before version 18 did, applies it, and checks
// that every user owns their account, still signed in and working in it,
// with the same store that serves today; then the way back.
func TestTeamsMigrationKeepsEveryoneSignedIn(t *testing.T) {
	db, p := migratedTo(t, 16)
	ctx := context.Background()
	w := db.Writer()
	exec := func(q string, args ...any) {
		t.Helper()
		if err := w.Exec(q, args...).Error; err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC().Truncate(time.Second)
	for _, a := range []string{"acct_a", "acct_b"} {
		exec(`INSERT INTO accounts (id, name, max_rpm, created_at) VALUES (?, ?, 600, ?)`, a, a+"@example.com", now)
		exec(`INSERT INTO wallets (account_id, updated_at) VALUES (?, ?)`, a, now)
	}
	exec(`INSERT INTO users (id, account_id, email, password_hash, role, created_at, password_changed_at)
		VALUES ('user_a', 'acct_a', 'a@example.com', 'x', 'owner', ?, ?), ('user_b', 'acct_b', 'b@example.com', 'x', 'owner', ?, ?)`,
		now, now, now, now)
	// Sessions keep only a token's hash; a test knows the token.
	token := "0123456789abcdef"
	exec(`INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at) VALUES (?, 'user_b', ?, ?, ?)`,
		models.HashToken(token), now, now, now.Add(time.Hour))

	if _, err := p.UpTo(ctx, 18); err != nil {
		t.Fatal(err)
	}
	s := models.NewStore(db)
	for user, acct := range map[string]string{"user_a": "acct_a", "user_b": "acct_b"} {
		ar, err := s.RoleIn(ctx, acct, user)
		if err != nil || ar.Role != models.RoleOwner {
			t.Errorf("%s in %s after version 18: %+v %v, want owner", user, acct, ar, err)
		}
		if accts, err := s.AccountsOf(ctx, user); err != nil || len(accts) != 1 {
			t.Errorf("%s belongs to %d accounts (%v), want 1", user, len(accts), err)
		}
	}
	u, sess, err := s.SessionUser(ctx, token)
	if err != nil || u.ID != "user_b" || sess.AccountID != "acct_b" {
		t.Fatalf("the session after version 18: %+v %+v %v, want user_b working in acct_b", u, sess, err)
	}
	// Exactly one owner an account: the database refuses a second.
	if err := w.Exec(`UPDATE memberships SET account_id = 'acct_a' WHERE user_id = 'user_b'`).Error; err == nil {
		t.Error("two owners of acct_a were accepted")
	}

	if _, err := p.DownTo(ctx, 16); err != nil {
		t.Fatal(err)
	}
	var role string
	if err := w.Raw(`SELECT role FROM users WHERE id = 'user_a'`).Scan(&role).Error; err != nil || role != "owner" {
		t.Fatalf("after the way back users.role is %q (%v), want owner", role, err)
	}
	if w.Migrator().HasTable("memberships") || w.Migrator().HasTable("invitations") {
		t.Fatal("the way back left the teams tables")
	}
}
