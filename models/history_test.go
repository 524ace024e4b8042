package models_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"ttconsole/internal/seed"
	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// TestHistoryPackedRowsAreThePlainOnes writes the same history twice,
// packed (SQLite's way) and one parameter per column: every column but
// the account must come out the same, as stored. Some calls do not fit the
// packed fields (a latency of over half a minute, a long prompt): their
// batches are written plain, and come out the same too.
func TestHistoryPackedRowsAreThePlainOnes(t *testing.T) {
	ctx := context.Background()
	opt := seed.Options{Requests: 2345, Now: time.Now().UTC(), KeyIDs: []string{"key_a", "key_b", "key_c"}, Seed: 11}
	var rows [2][]map[string]any
	for i, write := range []func(*models.Store, string, models.History) (int, error){
		func(s *models.Store, acct string, h models.History) (int, error) { return s.WriteHistory(ctx, acct, h) },
		func(s *models.Store, acct string, h models.History) (int, error) {
			return s.WriteHistoryPlain(ctx, acct, h)
		},
	} {
		db := testenv.SQLiteDB(t) // the same ids twice: two databases; packed rows are SQLite's way
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
		h, err := seed.History(ctx, store, opt)
		if err != nil {
			t.Fatal(err)
		}
		drawn, next := 0, h.Next
		h.Next = func() models.HistoryCall {
			c := next()
			if drawn++; drawn == 1500 {
				c.LatencyMS, c.PromptTokens = 45_000, 4000
			}
			return c
		}
		if n, err := write(store, u.AccountID, h); err != nil || n != opt.Requests {
			t.Fatalf("write %d: %d rows, %v", i, n, err)
		}
		// Every column, and the times as stored.
		if err := db.Writer().Raw(`SELECT *, CAST(created_at AS TEXT) AS created, CAST(completed_at AS TEXT) AS completed
			FROM requests WHERE account_id = ? ORDER BY id`, u.AccountID).Scan(&rows[i]).Error; err != nil {
			t.Fatal(err)
		}
	}
	if len(rows[0]) != opt.Requests || len(rows[1]) != opt.Requests {
		t.Fatalf("%d and %d rows", len(rows[0]), len(rows[1]))
	}
	for i := range rows[0] {
		delete(rows[0][i], "account_id")
		delete(rows[1][i], "account_id")
		if !reflect.DeepEqual(rows[0][i], rows[1][i]) {
			t.Fatalf("row %d differs:\npacked %v\nplain  %v", i, rows[0][i], rows[1][i])
		}
	}
	if rows[0][1499]["latency_ms"] != int64(45_000) {
		t.Fatalf("the call outside the packed fields was written with latency %v", rows[0][1499]["latency_ms"])
	}
}
