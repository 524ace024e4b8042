package seed_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"ttconsole/internal/seed"
	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// listedRows returns an account's requests as its Requests pages list them,
// newest first.
func listedRows(t *testing.T, s *models.Store, accountID string) []models.Request {
	t.Helper()
	var rows []models.Request
	for cursor := ""; ; {
		page, err := s.ListRequests(context.Background(), accountID, models.RequestFilter{}, cursor, 500)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, page.Rows...)
		if cursor = page.Next; cursor == "" {
			return rows
		}
	}
}

// TestRequestsWritesARealisticHistory seeds an account: every row is its
// own, over the last 30 days, ids following time, each charged at most its
// hold, and the history a mix of answers, outcomes, the catalogue's models
// and streams.
func TestRequestsWritesARealisticHistory(t *testing.T) {
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
	n, err := seed.Requests(ctx, store, u.AccountID, seed.Options{
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
	rows := listedRows(t, store, u.AccountID)
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

// TestRequestsBesideAnotherHistory seeds the same account twice over the same
// month, the second history's rows at the same times as the first's: both
// histories are written whole, each row once, and the Requests page lists
// them all newest first.
func TestRequestsBesideAnotherHistory(t *testing.T) {
	db := testenv.DB(t)
	store := models.NewStore(db)
	ctx := context.Background()
	u, err := store.CreateAccount(ctx, "seed@example.com", "long enough password")
	if err != nil {
		t.Fatal(err)
	}
	acct := u.AccountID
	now := time.Now().UTC()
	const n = 2500
	for _, s := range []uint64{3, 4} {
		if got, err := seed.Requests(ctx, store, acct, seed.Options{Requests: n, Now: now, Seed: s}); err != nil || got != n {
			t.Fatalf("seed %d: %d rows, %v", s, got, err)
		}
	}
	var listed []string
	for _, r := range listedRows(t, store, acct) {
		listed = append(listed, r.ID)
	}
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

// TestRequestsUseTheCatalogue seeds an account after a chat model was
// added to the catalogue: the history calls every chat and embedding
// model of the catalogue and nothing else, each on its endpoint, and holds
// and charges each call at its model's prices there.
func TestRequestsUseTheCatalogue(t *testing.T) {
	ctx := context.Background()
	store := models.NewStore(testenv.DB(t))
	next := models.CatalogModel{ID: "tt-chat-next", Kind: models.KindChat, InputMicrosPerMTok: 2_000_000,
		OutputMicrosPerMTok: 8_000_000, MaxOutputTokens: 8192, Sort: 15}
	if err := store.AddModel(ctx, next); err != nil {
		t.Fatal(err)
	}
	a := testenv.FundedKey(t, store, "catalogue@example.com", 0, models.KeyInput{Name: "k"})
	if _, err := seed.Requests(ctx, store, a.ID, seed.Options{Requests: 3000, KeyIDs: []string{a.Key.ID}, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	catalogue, err := store.Models(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]models.CatalogModel{}
	for _, m := range catalogue {
		if m.Kind == models.KindChat || m.Kind == models.KindEmbeddings {
			want[m.ID] = m
		}
	}
	used := map[string]int{}
	for _, r := range listedRows(t, store, a.ID) {
		m, ok := want[r.Model]
		if !ok {
			t.Fatalf("request %s calls %q, not a chat or embedding model of the catalogue", r.ID, r.Model)
		}
		used[r.Model]++
		if r.Status != 404 && r.Path != m.Path() {
			t.Fatalf("request %s calls %s at %s, want %s", r.ID, r.Model, r.Path, m.Path())
		}
		if r.HoldMicros == 0 {
			continue
		}
		hold := models.TokenCost(r.PromptTokens, models.DefaultMaxTokens, m.InputMicrosPerMTok, m.OutputMicrosPerMTok)
		charge := min(hold, models.TokenCost(r.PromptTokens, r.CompletionTokens, m.InputMicrosPerMTok, m.OutputMicrosPerMTok))
		if r.HoldMicros != hold || (r.ChargedMicros != 0 && r.ChargedMicros != charge) {
			t.Fatalf("request %s on %s held %d and charged %d, want %d and %d at its prices", r.ID, r.Model,
				r.HoldMicros, r.ChargedMicros, hold, charge)
		}
	}
	if len(used) != len(want) || used[next.ID] == 0 {
		t.Fatalf("the history calls %v, want each of the catalogue's %d chat and embedding models", used, len(want))
	}
}
