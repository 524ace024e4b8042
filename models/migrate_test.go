package models_test

import (
	"context"
	"testing"

	"ttconsole/internal/testenv"
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
	for _, table := range []string{"accounts", "users", "wallets", "sessions", "settings"} {
		if !db.W.Migrator().HasTable(table) {
			t.Errorf("table %s missing after migrations", table)
		}
	}
}
