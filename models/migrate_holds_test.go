package models_test

import (
	"context"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"ttconsole/models"
)

// TestHoldsMoveOntoRequests migrates a database holding calls in every
// state from the holds table (00007) onto the request rows (00008): each
// call keeps its hold's state, times and amounts, its timeline and the
// ledger invariant; the reaper still finds the open hold; and the way
// back restores the holds table.
func TestHoldsMoveOntoRequests(t *testing.T) {
	db, p := migratedTo(t, 7, goose.WithAllowOutofOrder(true))
	ctx := context.Background()

	// An account with 1000 µ$ charged out of 10,000 credited and 500 held.
	held := time.Date(2026, 10, 31, 23, 59, 0, 0, time.UTC) // its key month is October
	ended := held.Add(2 * time.Second)
	exec := func(q string, args ...any) {
		t.Helper()
		if err := db.Writer().Exec(q, args...).Error; err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`INSERT INTO accounts (id, name, created_at) VALUES ('acc_1', 'a', ?)`, held)
	exec(`INSERT INTO wallets (account_id, balance_micros, held_micros, updated_at) VALUES ('acc_1', 9000, 500, ?)`, held)
	exec(`INSERT INTO ledger_entries (id, account_id, kind, amount_micros, balance_after_micros, created_at)
		VALUES ('led_1', 'acc_1', 'recharge', 10000, 10000, ?)`, held)
	exec(`INSERT INTO ledger_entries (id, account_id, kind, amount_micros, balance_after_micros, request_id, created_at)
		VALUES ('led_2', 'acc_1', 'charge', -1000, 9000, 'req_captured', ?)`, ended)
	exec(`INSERT INTO key_month_usage (key_id, month, spent_micros, held_micros) VALUES ('key_1', '2026-10', 1000, 500)`)
	for _, c := range []struct {
		id, status, outcome string
		amount, charged     int64
	}{
		{"req_captured", models.HoldCaptured, models.OutcomeCharged, 1500, 1000},
		{"req_released", models.HoldReleased, models.OutcomeNotChargedFailed, 700, 0},
		{"req_expired", models.HoldExpired, models.OutcomeNotChargedExpired, 300, 0},
		{"req_open", models.HoldOpen, models.OutcomePending, 500, 0},
	} {
		var endedAt *time.Time
		if c.status != models.HoldOpen {
			endedAt = &ended
		}
		exec(`INSERT INTO requests (id, account_id, key_id, method, path, model, status, hold_micros, charged_micros,
			billing_outcome, created_at) VALUES (?, 'acc_1', 'key_1', 'POST', '/v1/chat/completions', 'tt-chat-small', 200, ?, ?, ?, ?)`,
			c.id, c.amount, c.charged, c.outcome, held)
		exec(`INSERT INTO holds (id, account_id, key_id, request_id, month, amount_micros, status, captured_micros,
			created_at, expires_at, ended_at) VALUES (?, 'acc_1', 'key_1', ?, '2026-10', ?, ?, ?, ?, ?, ?)`,
			"hold_"+c.id, c.id, c.amount, c.status, c.charged, held, held.Add(time.Minute), endedAt)
	}
	exec(`INSERT INTO requests (id, account_id, method, path, status, error_type, billing_outcome, created_at)
		VALUES ('req_rejected', 'acc_1', 'POST', '/v1/chat/completions', 429, 'rate_limited', 'not_charged_rejected', ?)`, held)
	exec(`INSERT INTO tasks (id, account_id, key_id, request_id, hold_id, model, upstream_id, status, price_micros,
		created_at, expires_at) VALUES ('task_1', 'acc_1', 'key_1', 'req_open', 'hold_req_open', 'tt-video-1', 'up_1',
		'running', 500, ?, ?)`, held, held.Add(time.Minute))

	if _, err := p.UpTo(ctx, 8); err != nil {
		t.Fatal(err)
	}
	s := models.NewStore(db)
	for id, want := range map[string][]string{
		"req_captured": {"hold_placed", "captured", "released"},
		"req_released": {"hold_placed", "released"},
		"req_expired":  {"hold_placed", "expired"},
		"req_open":     {"hold_placed"},
		"req_rejected": nil,
	} {
		evs, err := s.Timeline(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ev := range evs {
			got = append(got, ev.Event)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: timeline %v, want %v", id, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: timeline %v, want %v", id, got, want)
			}
		}
		if len(evs) > 0 && !evs[0].CreatedAt.Equal(held) {
			t.Fatalf("%s: hold placed at %v, want %v", id, evs[0].CreatedAt, held)
		}
		if id == "req_captured" && (evs[1].AmountMicros != 1000 || evs[1].LedgerEntryID == nil ||
			*evs[1].LedgerEntryID != "led_2" || evs[2].AmountMicros != 500 || !evs[1].CreatedAt.Equal(ended)) {
			t.Fatalf("captured call's timeline: %+v", evs)
		}
	}
	if err := s.LedgerInvariant(ctx, "acc_1"); err != nil {
		t.Fatal(err)
	}
	// The task's hold is its request's: the reaper expires it once, and the
	// October hold is given back to October. (The reaper counts the call
	// in the usage roll-up, which today's store writes: versions 15 and 21
	// first.)
	for _, v := range []int64{15, 21} {
		if _, err := p.ApplyVersion(ctx, v, true); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.ExpireHolds(ctx, held.Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("expired %d holds (%v), want the open one", n, err)
	}
	if spent, heldOct, err := s.KeyMonthUsage(ctx, "key_1", held); err != nil || heldOct != 0 || spent != 1000 {
		t.Fatalf("October still holds %d µ$, spent %d (%v)", heldOct, spent, err)
	}
	if err := s.LedgerInvariant(ctx, "acc_1"); err != nil {
		t.Fatal(err)
	}

	// And back: the holds table again, one row per call that held.
	if _, err := p.DownTo(ctx, 7); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Holds, Expired, Captured int64
		Month                    string
	}
	if err := db.Writer().Raw(`SELECT count(*) AS holds,
		SUM(CASE WHEN status = 'expired' THEN 1 ELSE 0 END) AS expired,
		SUM(CASE WHEN status = 'captured' THEN captured_micros ELSE 0 END) AS captured,
		MIN(month) AS month FROM holds`).Scan(&back).Error; err != nil {
		t.Fatal(err)
	}
	if back.Holds != 4 || back.Expired != 2 || back.Captured != 1000 || back.Month != "2026-10" {
		t.Fatalf("holds after the way back: %+v", back)
	}
}
