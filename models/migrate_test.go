package models_test

import (
	"context"
	"testing"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// testenv.DB migrates a fresh database from empty on SQLite, or on
// PostgreSQL when DATABASE_URL is set; running again applies nothing.
func TestMigrationsApplyFromEmpty(t *testing.T) {
	db := testenv.DB(t)
	n, err := db.Migrate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("second run applied %d migrations, want 0", n)
	}
	if !db.Postgres {
		// Migrations keep their temporary data in files; the writer goes
		// back to keeping it in memory afterwards.
		var tempStore int
		if err := db.SQL().QueryRow("PRAGMA temp_store").Scan(&tempStore); err != nil || tempStore != 2 {
			t.Errorf("after migrating, the writer's temp_store is %d (%v), want 2 (memory)", tempStore, err)
		}
	}
	// The store works on what they made: accounts, users and wallets,
	// sessions, settings.
	ctx := context.Background()
	s := models.NewStore(db)
	u, err := s.CreateAccount(ctx, "migrated@example.com", "long enough password")
	if err != nil {
		t.Fatalf("create an account: %v", err)
	}
	if w, err := s.WalletOf(ctx, u.AccountID); err != nil || w.BalanceMicros != 0 {
		t.Fatalf("the new account's wallet: %+v %v", w, err)
	}
	token, err := s.CreateSession(ctx, u.ID, u.AccountID, "127.0.0.1", "test")
	if err != nil {
		t.Fatalf("create a session: %v", err)
	}
	if got, _, err := s.SessionUser(ctx, token); err != nil || got.ID != u.ID {
		t.Fatalf("the session's user: %+v %v", got, err)
	}
	if key, err := s.SecretSetting(ctx, "migrate_test", 16); err != nil || len(key) != 16 {
		t.Fatalf("a setting: %d bytes, %v", len(key), err)
	}
}
