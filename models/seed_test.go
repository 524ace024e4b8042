package models_test

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

func TestSeedRequestsWritesARealisticHistory(t *testing.T) {
	db := testenv.DB(t)
	store := models.NewStore(db)
	ctx := context.Background()
	u, err := store.CreateAccount(ctx, "seed@example.com", "long enough password")
	if err != nil {
		t.Fatal(err)
	}
	k, _, err := store.CreateAPIKey(ctx, u.AccountID, models.AdminCLI, models.KeyInput{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	var progress []int
	n, err := store.SeedRequests(ctx, u.AccountID, models.SeedOptions{
		Requests: 3210, Now: now, KeyIDs: []string{k.ID}, Seed: 7,
		Progress: func(done int) { progress = append(progress, done) },
	})
	if err != nil || n != 3210 {
		t.Fatalf("seeded %d: %v", n, err)
	}
	if len(progress) == 0 || progress[len(progress)-1] != 3210 {
		t.Fatalf("progress %v", progress)
	}
	// The history as the Requests pages list it, oldest first.
	var rows []models.Request
	for cursor := ""; ; {
		page, err := store.ListRequests(ctx, u.AccountID, models.RequestFilter{}, cursor, 500)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, page.Rows...)
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	slices.Reverse(rows)
	if len(rows) != 3210 {
		t.Fatalf("%d rows", len(rows))
	}
	statuses, outcomes, types, models_ := map[int]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	streams := 0
	for i, r := range rows {
		statuses[r.Status]++
		outcomes[r.BillingOutcome]++
		types[r.ErrorType]++
		models_[r.Model]++
		if r.Stream {
			streams++
		}
		if r.ChargedMicros > r.HoldMicros {
			t.Fatalf("row %s charged %d over its hold %d", r.ID, r.ChargedMicros, r.HoldMicros)
		}
		if r.CreatedAt.Before(now.Add(-31*24*time.Hour)) || r.CreatedAt.After(now) {
			t.Fatalf("row %s at %s, outside the last 30 days", r.ID, r.CreatedAt)
		}
		if i > 0 && r.CreatedAt.Before(rows[i-1].CreatedAt) {
			t.Fatal("ids do not follow time: the history would not page like real traffic")
		}
		if models.RequestIDAt(r.CreatedAt) > r.ID || models.RequestIDAt(r.CreatedAt.Add(time.Millisecond)) <= r.ID {
			t.Fatalf("row %s: id not made from its time %s", r.ID, r.CreatedAt)
		}
	}
	if len(statuses) < 8 || len(outcomes) < 4 || len(types) < 10 || len(models_) < 3 || streams == 0 {
		t.Fatalf("not a mix: statuses %v outcomes %v types %d models %v streams %d", statuses, outcomes, len(types), models_, streams)
	}
}

// TestSeedPackedRowsAreThePlainOnes seeds the same history twice, packed
// (SQLite's way) and one parameter per column: every column but the
// account must come out the same.
func TestSeedPackedRowsAreThePlainOnes(t *testing.T) {
	if testenv.Postgres() {
		t.Skip("packed rows are SQLite's way; PostgreSQL seeds one parameter per column")
	}
	ctx := context.Background()
	opt := models.SeedOptions{Requests: 2345, Now: time.Now().UTC(), KeyIDs: []string{"key_a", "key_b", "key_c"}, Seed: 11}
	cols := "id, key_id, method, path, model, status, error_type, error_message, error_body, client_ip, stream, latency_ms, " +
		"prompt_tokens, completion_tokens, hold_micros, charged_micros, billing_outcome, outcome_detail, ratelimit_limit, " +
		"ratelimit_remaining, ratelimit_reset, retry_after, CAST(created_at AS TEXT) AS created, CAST(completed_at AS TEXT) AS completed"
	var rows [2][]map[string]any
	for i, seed := range []func(*models.Store, string) (int, error){
		func(s *models.Store, acct string) (int, error) { return s.SeedRequests(ctx, acct, opt) },
		func(s *models.Store, acct string) (int, error) { return s.SeedRequestsPlain(ctx, acct, opt) },
	} {
		db := testenv.DB(t) // the same ids twice: two databases
		store := models.NewStore(db)
		u, err := store.CreateAccount(ctx, "seed@example.com", "long enough password")
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range opt.KeyIDs { // the same key ids in both
			if err := db.Writer().Exec(`INSERT INTO api_keys (id, account_id, name, secret_hash, prefix, last4, created_at)
				VALUES (?, ?, ?, ?, 'sk-tt-', 'abcd', ?)`, id, u.AccountID, id, id, opt.Now).Error; err != nil {
				t.Fatal(err)
			}
		}
		if n, err := seed(store, u.AccountID); err != nil || n != opt.Requests {
			t.Fatalf("seed %d: %d rows, %v", i, n, err)
		}
		if err := db.Writer().Raw("SELECT "+cols+" FROM requests WHERE account_id = ? ORDER BY id", u.AccountID).Scan(&rows[i]).Error; err != nil {
			t.Fatal(err)
		}
	}
	if len(rows[0]) != opt.Requests || len(rows[1]) != opt.Requests {
		t.Fatalf("%d and %d rows", len(rows[0]), len(rows[1]))
	}
	for i := range rows[0] {
		if !reflect.DeepEqual(rows[0][i], rows[1][i]) {
			t.Fatalf("row %d differs:\npacked %v\nplain  %v", i, rows[0][i], rows[1][i])
		}
	}
}

// TestSeedBesideAnotherHistory seeds the same account twice over the same
// month, the second history's rows at the same times as the first's: both
// histories are written whole, each row once, and the Requests page lists
// them all newest first.
func TestSeedBesideAnotherHistory(t *testing.T) {
	db := testenv.DB(t)
	store := models.NewStore(db)
	ctx := context.Background()
	acct := newAccount(t, store, "seed@example.com")
	now := time.Now().UTC()
	const n = 2500
	for _, seed := range []uint64{3, 4} {
		if got, err := store.SeedRequests(ctx, acct, models.SeedOptions{Requests: n, Now: now, Seed: seed}); err != nil || got != n {
			t.Fatalf("seed %d: %d rows, %v", seed, got, err)
		}
	}
	listed := listedIDs(t, store, acct, 500)
	seen := map[string]bool{}
	for i, id := range listed {
		if seen[id] {
			t.Fatalf("%s listed twice", id)
		}
		seen[id] = true
		if i > 0 && id > listed[i-1] {
			t.Fatalf("%s listed after %s: not newest first", id, listed[i-1])
		}
	}
	if len(listed) != 2*n {
		t.Fatalf("the page lists %d requests, want both histories' %d", len(listed), 2*n)
	}
}
