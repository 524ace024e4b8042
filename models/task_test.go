package models_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// TestTaskThatSucceedsAfterItsHoldExpiredIsCharged: when the reaper has
// expired a task's hold (its end could not be written in time) and the
// task then succeeds, its result is delivered and its price is charged,
// late, as a call's would be: not a free task.
func TestTaskThatSucceedsAfterItsHoldExpiredIsCharged(t *testing.T) {
	s := models.NewStore(testenv.DB(t))
	ctx := context.Background()
	const balance, price = 5 * models.MicrosPerUSD, 400_000
	a := testenv.FundedKey(t, s, "task@example.com", balance, models.KeyInput{Name: "k"})
	start := func() *models.Task {
		r := &models.Request{ID: s.NewRequestID(), AccountID: &a.ID, KeyID: &a.Key.ID, Method: "POST",
			Path: "/v1/tasks", Model: "tt-video-1", CreatedAt: time.Now().UTC(), Status: 202}
		if _, err := s.StartCall(ctx, r, a.Key.ID, nil, price, 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		task := &models.Task{ID: s.NewID("task"), AccountID: a.ID, KeyID: a.Key.ID, RequestID: r.ID, Model: "tt-video-1",
			UpstreamID: "up_" + r.ID, Status: models.TaskRunning, PriceMicros: price,
			CreatedAt: time.Now().UTC(), ExpiresAt: time.Now().UTC().Add(time.Hour)}
		if err := s.CreateTask(ctx, task); err != nil {
			t.Fatal(err)
		}
		return task
	}
	won, lost := start(), start()
	time.Sleep(100 * time.Millisecond)
	if n, err := s.ExpireHolds(ctx, time.Now()); err != nil || n != 2 {
		t.Fatalf("the reaper expired %d holds (%v), want 2", n, err)
	}
	if err := s.EndTask(ctx, won, models.TaskSucceeded, "the video", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.EndTask(ctx, lost, models.TaskFailed, "", "upstream failed"); err != nil {
		t.Fatal(err)
	}

	got, err := s.TaskOf(ctx, a.ID, won.ID)
	if err != nil || got.Status != models.TaskSucceeded || got.Result != "the video" {
		t.Fatalf("task %+v %v, want succeeded with its result", got, err)
	}
	row, err := s.RequestOf(ctx, a.ID, won.RequestID)
	if err != nil || row.BillingOutcome != models.OutcomeCharged || row.ChargedMicros != price ||
		!strings.Contains(row.OutcomeDetail, "task succeeded") || !strings.Contains(row.OutcomeDetail, "charged afterwards") {
		t.Fatalf("the succeeded task's request: %+v %v; want charged %d, late", row, err, price)
	}
	row, err = s.RequestOf(ctx, a.ID, lost.RequestID)
	if err != nil || row.BillingOutcome != models.OutcomeNotChargedExpired || row.ChargedMicros != 0 {
		t.Fatalf("the failed task's request: %+v %v; want not charged", row, err)
	}
	w, err := s.WalletOf(ctx, a.ID)
	if err != nil || w.BalanceMicros != balance-price || w.HeldMicros != 0 || w.DebtMicros != 0 {
		t.Fatalf("wallet %+v %v; want %d charged once, nothing held", w, err, price)
	}
	if err := s.LedgerInvariant(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	// Ending it again changes nothing.
	if err := s.EndTask(ctx, won, models.TaskSucceeded, "the video", ""); models.ErrorCode(err) != models.ECONFLICT {
		t.Fatalf("ending the task again: %v, want a conflict", err)
	}
	if w2, _ := s.WalletOf(ctx, a.ID); w2.BalanceMicros != w.BalanceMicros {
		t.Fatalf("ending the task again moved the balance from %d to %d", w.BalanceMicros, w2.BalanceMicros)
	}
}
