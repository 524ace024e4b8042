package models_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// TestExpiredLinksArePurged: the rows of links that expired more than
// TokenKeep ago go, whatever their state; a link that expired recently
// still tells its visitor the address is confirmed, and a live one works.
func TestExpiredLinksArePurged(t *testing.T) {
	db := testenv.DB(t)
	s := models.NewStore(db)
	ctx := context.Background()
	u, err := s.CreateAccount(ctx, "ada@example.com", "long enough password")
	if err != nil {
		t.Fatal(err)
	}
	link := func(purpose string, ttl time.Duration) string {
		t.Helper()
		token, err := s.NewUserToken(ctx, purpose, u, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return token
	}
	old := link(models.TokenVerify, -models.TokenKeep-time.Hour)
	oldReset := link(models.TokenReset, -models.TokenKeep-time.Minute)
	recent := link(models.TokenVerify, -time.Hour)
	live := link(models.TokenReset, models.ResetLinkTTL)
	if err := s.MarkEmailVerified(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyEmail(ctx, old); err != nil {
		t.Fatalf("before the purge, an old link of a confirmed address: %v, want its user", err)
	}

	n, err := s.PurgeUserTokens(ctx, time.Now().Add(-models.TokenKeep))
	if err != nil || n != 2 {
		t.Fatalf("purge: %d rows, %v; want the 2 links past TokenKeep", n, err)
	}
	if _, err := s.VerifyEmail(ctx, old); err != models.ErrLinkInvalid {
		t.Errorf("a purged confirmation link: %v, want ErrLinkInvalid", err)
	}
	if _, err := s.ResetLinkUser(ctx, oldReset); err != models.ErrLinkInvalid {
		t.Errorf("a purged reset link: %v, want ErrLinkInvalid", err)
	}
	if got, err := s.VerifyEmail(ctx, recent); err != nil || got.ID != u.ID {
		t.Errorf("a link expired an hour ago, of a confirmed address: %v, %v; want its user", got, err)
	}
	if got, err := s.ResetLinkUser(ctx, live); err != nil || got.ID != u.ID {
		t.Errorf("a live reset link after the purge: %v, %v; want its user", got, err)
	}
	if n, err := s.PurgeUserTokens(ctx, time.Now().Add(-models.TokenKeep)); err != nil || n != 0 {
		t.Errorf("a second purge: %d rows, %v; want none", n, err)
	}

	// Every instance purges every minute: by the expiry's index, not by
	// reading every link (PostgreSQL is told to avoid a scan, as it would
	// with more rows than this test's).
	tx, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var plan []string
	if db.Postgres {
		if _, err := tx.Exec("SET LOCAL enable_seqscan = off"); err != nil {
			t.Fatal(err)
		}
		rows, err := tx.Query("EXPLAIN DELETE FROM user_tokens WHERE expires_at < $1", time.Now().UTC())
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var line string
			rows.Scan(&line)
			plan = append(plan, line)
		}
	} else {
		rows, err := tx.Query("EXPLAIN QUERY PLAN DELETE FROM user_tokens WHERE expires_at < ?", time.Now().UTC())
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id, parent, unused int
			var detail string
			rows.Scan(&id, &parent, &unused, &detail)
			plan = append(plan, detail)
		}
	}
	if !strings.Contains(strings.Join(plan, "\n"), "user_tokens_expires") {
		t.Errorf("the purge's plan does not use the expiry's index: %q", plan)
	}
}
