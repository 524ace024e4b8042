package models_test

import (
	"context"
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
	var rows []models.Request
	if err := db.R.Where("account_id = ?", u.AccountID).Order("id").Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
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
