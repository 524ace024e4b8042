package models_test

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"ttconsole/internal/testenv"
	"ttconsole/migrations"
	"ttconsole/models"
)

// logAt logs a rejected call of the account's key made at at and returns
// its id.
func logAt(t *testing.T, s *models.Store, acct, key string, at time.Time) string {
	t.Helper()
	r := &models.Request{ID: models.NewRequestIDAt(at), AccountID: &acct, KeyID: &key, Method: "POST",
		Path: "/v1/chat/completions", Model: "tt-chat-small", Status: 429, ErrorType: "rate_limited",
		ErrorMessage: "slow down", CreatedAt: at.UTC()}
	if err := s.LogRequest(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r.ID
}

// callAt runs a call made at at through its hold: charged 700 of a hold of
// 1000, or, with open, left running. It returns the call's id, hold and row.
func callAt(t *testing.T, s *models.Store, acct, key string, at time.Time, open bool) (string, *models.Hold, *models.Request) {
	t.Helper()
	ctx := context.Background()
	r := &models.Request{ID: models.NewRequestIDAt(at), AccountID: &acct, KeyID: &key, Method: "POST",
		Path: "/v1/chat/completions", Model: "tt-chat-small", Status: 200, CreatedAt: at.UTC()}
	h, err := s.StartCall(ctx, r, key, nil, 1000, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !open {
		r.PromptTokens, r.CompletionTokens = 10, 20
		if err := s.FinishCall(ctx, h, r, 700); err != nil {
			t.Fatal(err)
		}
	}
	return r.ID, h, r
}

// partitionOf is the table holding request id on PostgreSQL.
func partitionOf(t *testing.T, db *models.DB, id string) string {
	t.Helper()
	var name string
	if err := db.Writer().Raw("SELECT tableoid::regclass::text FROM requests WHERE id = ?", id).Scan(&name).Error; err != nil {
		t.Fatal(err)
	}
	return name
}

// TestRequestLogKeepsEveryRowThroughVersion12 writes a request log at
// version 11, spread over years, with charged, rejected and still
// running calls and an id the product did not make, and migrates it to
// version 12, which partitions it by month on PostgreSQL: every request
// reads back exactly as before, on its detail, its timeline and the
// Requests page; the running call can still be charged; the ledger adds
// up; and on PostgreSQL each row is in its month's partition, and the
// way down and up again keeps the log as it was.
func TestRequestLogKeepsEveryRowThroughVersion12(t *testing.T) {
	from := int64(11)
	if !testenv.Postgres() {
		from = 13 // 12 changes nothing on SQLite, whose log today's store writes from 13 on
	}
	db, p := migratedTo(t, from, goose.WithAllowOutofOrder(true))
	ctx := context.Background()
	// Today's store writes the column version 14 adds, the usage roll-up
	// of version 15, the key columns of 16, the users' column of 17, the
	// memberships of 18, the audit log of 19, the wallet columns of 20 and
	// the roll-up's outcome columns of 21: they go first.
	for _, v := range []int64{14, 15, 16, 17, 18, 19, 20, 21} {
		if _, err := p.ApplyVersion(ctx, v, true); err != nil {
			t.Fatal(err)
		}
	}
	s := models.NewStore(db)
	a := testenv.FundedKey(t, s, "v12@example.com", models.MicrosPerUSD, models.KeyInput{Name: "k"})
	acct, key := a.ID, a.Key.ID
	now := time.Now().UTC()
	var ids []string
	var openHold *models.Hold
	var openRow *models.Request
	for _, at := range []time.Time{time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC), now.AddDate(0, 0, -400),
		now.AddDate(0, 0, -70), now.AddDate(0, 0, -35), now.Add(-time.Hour)} {
		ids = append(ids, logAt(t, s, acct, key, at))
		id, _, _ := callAt(t, s, acct, key, at.Add(time.Second), false)
		ids = append(ids, id)
	}
	id, h, r := callAt(t, s, acct, key, now.AddDate(0, 0, -35).Add(time.Minute), true)
	ids, openHold, openRow = append(ids, id), h, r
	odd := &models.Request{ID: "req_imported-0001", AccountID: &acct, Method: "GET", Path: "/v1/models", Status: 200,
		BillingOutcome: models.OutcomeNotChargedFree, CreatedAt: now.Add(-2 * time.Hour)}
	if err := s.LogRequest(ctx, odd); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, odd.ID)

	read := func(s *models.Store) (map[string]models.Request, map[string][]models.BillingEvent, []string) {
		rows, timelines := map[string]models.Request{}, map[string][]models.BillingEvent{}
		for _, id := range ids {
			r, err := s.RequestOf(ctx, acct, id)
			if err != nil {
				t.Fatalf("request %s: %v", id, err)
			}
			rows[id] = *r
			if timelines[id], err = s.Timeline(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		return rows, timelines, listedIDs(t, s, acct, 4)
	}
	rows, timelines, listed := read(s)
	if len(listed) != len(ids) {
		t.Fatalf("before: the page lists %d requests, want %d", len(listed), len(ids))
	}

	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	s = models.NewStore(db)
	rows2, timelines2, listed2 := read(s)
	if !reflect.DeepEqual(rows2, rows) || !reflect.DeepEqual(timelines2, timelines) || !slices.Equal(listed2, listed) {
		t.Fatalf("after version 12 the log reads differently:\nrows %v\nwant %v\ntimelines %v\nwant %v\nlisted %v\nwant %v",
			rows2, rows, timelines2, timelines, listed2, listed)
	}
	if err := s.FinishCall(ctx, openHold, openRow, 400); err != nil {
		t.Fatal(err)
	}
	if r, err := s.RequestOf(ctx, acct, openRow.ID); err != nil || r.BillingOutcome != models.OutcomeCharged || r.ChargedMicros != 400 {
		t.Fatalf("the call running through the migration: %+v, %v", r, err)
	}
	if err := s.LedgerInvariant(ctx, acct); err != nil {
		t.Fatal(err)
	}
	if !db.Postgres {
		return
	}
	for id, r := range rows {
		want := migrations.RequestPartitionOf(r.CreatedAt).Name()
		if id == odd.ID {
			want = migrations.RequestsDefaultPartition
		}
		if got := partitionOf(t, db, id); got != want {
			t.Errorf("request %s of %s is in %s, want %s", id, r.CreatedAt, got, want)
		}
	}

	// The way down puts every row back into one table, and up again
	// partitions it again.
	for _, step := range []struct {
		name, kind string // kind: the table's relkind after the step, r plain or p partitioned
		run        func(context.Context) error
	}{
		{"down to 11", "r", func(ctx context.Context) error {
			if _, err := p.DownTo(ctx, 11); err != nil {
				return err
			}
			_, err := p.ApplyVersion(ctx, 14, true) // the column today's store reads
			return err
		}},
		{"up again", "p", func(ctx context.Context) error { _, err := p.Up(ctx); return err }},
	} {
		if err := step.run(ctx); err != nil {
			t.Fatal(err)
		}
		if got := listedIDs(t, models.NewStore(db), acct, 4); !slices.Equal(got, listed) {
			t.Fatalf("%s: the log lists %v, want %v", step.name, got, listed)
		}
		var kind string
		if err := db.Writer().Raw("SELECT relkind FROM pg_class WHERE relname = 'requests'").Scan(&kind).Error; err != nil || kind != step.kind {
			t.Fatalf("%s: requests has relkind %q (%v), want %s", step.name, kind, err, step.kind)
		}
	}
}
