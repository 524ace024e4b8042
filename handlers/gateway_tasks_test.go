package handlers_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"ttconsole/handlers"
	"ttconsole/internal/testenv"
	"ttconsole/models"
)

func fastTasks(ttl time.Duration) testenv.Options {
	return testenv.Options{Adjust: func(a *handlers.App) {
		a.TaskTTL = ttl
		a.TaskPoll = 20 * time.Millisecond
	}}
}

type taskOut struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	RequestID string    `json:"request_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (p *platform) createTask(secret string, metadata map[string]string) (apiResult, taskOut) {
	p.t.Helper()
	b, _ := json.Marshal(map[string]any{"model": "tt-video-1", "input": "a cat on a mat", "metadata": metadata})
	r := p.do("POST", "/v1/tasks", secret, string(b))
	var t taskOut
	json.Unmarshal([]byte(r.body), &t)
	return r, t
}

// waitTask polls GET /v1/tasks/{id} until the task leaves running.
func (p *platform) waitTask(id string) taskOut {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := p.do("GET", "/v1/tasks/"+id, p.secret, "")
		var t taskOut
		json.Unmarshal([]byte(r.body), &t)
		if t.Status != "running" {
			return t
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("task %s still running", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *platform) events(requestID string) []string {
	p.t.Helper()
	evs, err := p.srv.Store.Timeline(context.Background(), requestID)
	if err != nil {
		p.t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Event)
	}
	return out
}

func TestTasksSettleByOutcome(t *testing.T) {
	noLeaks(t)
	videoPrice := catalogued(t, "tt-video-1").TaskPriceMicros
	cases := []struct {
		name, outcome, wantStatus, wantBilling string
		charged                                int64
		events                                 string
	}{
		{"succeeded", "succeeded", "succeeded", models.OutcomeCharged, videoPrice, "hold_placed captured"},
		{"failed", "failed", "failed", models.OutcomeNotChargedFailed, 0, "hold_placed released"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlatform(t, fastTasks(time.Minute))
			// The upstream takes its time to accept the task: the task's
			// own time still runs from its hold, and ends a minute before
			// the hold's, so the reaper never ends a running task's hold.
			r, task := p.createTask(p.secret, map[string]string{"sim_duration_ms": "100", "sim_outcome": tc.outcome,
				"sim_delay_ms": "200"})
			if r.res.StatusCode != 202 || task.Status != "running" || task.RequestID != r.id() {
				t.Fatalf("create: %d %s", r.res.StatusCode, r.body)
			}
			held := p.row(p.account, r.id())
			if d := task.ExpiresAt.Sub(held.HeldAt.Add(time.Minute)); d < -time.Millisecond || d > time.Millisecond ||
				held.HoldExpiresAt.Sub(task.ExpiresAt) < time.Minute-time.Millisecond {
				t.Fatalf("the task expires at %s, its hold was placed at %s and expires at %s: want the task to expire a minute after the hold was placed",
					task.ExpiresAt, held.HeldAt, held.HoldExpiresAt)
			}
			if w := p.wallet(p.account); w.HeldMicros != videoPrice {
				t.Fatalf("held %d while running, want the task's price", w.HeldMicros)
			}
			if got := p.waitTask(task.ID); got.Status != tc.wantStatus {
				t.Fatalf("task ended %s, want %s", got.Status, tc.wantStatus)
			}
			row := p.row(p.account, r.id())
			if row.Status != 202 || row.BillingOutcome != tc.wantBilling || row.ChargedMicros != tc.charged {
				t.Fatalf("request row %+v", row)
			}
			if got := strings.Join(p.events(r.id()), " "); got != tc.events {
				t.Fatalf("timeline %q, want %q", got, tc.events)
			}
			if w := p.wallet(p.account); w.HeldMicros != 0 || w.BalanceMicros != 10*models.MicrosPerUSD-tc.charged {
				t.Fatalf("wallet %+v", w)
			}
			p.invariants(p.account)
		})
	}
}

func TestTaskCancelAndExpiry(t *testing.T) {
	noLeaks(t)
	p := newPlatform(t, fastTasks(300*time.Millisecond))
	r, task := p.createTask(p.secret, map[string]string{"sim_duration_ms": "60000"})
	if r.res.StatusCode != 202 {
		t.Fatalf("create: %d %s", r.res.StatusCode, r.body)
	}
	c := p.do("POST", "/v1/tasks/"+task.ID+"/cancel", p.secret, "")
	if c.res.StatusCode != 200 || !strings.Contains(c.body, `"status":"cancelled"`) {
		t.Fatalf("cancel: %d %s", c.res.StatusCode, c.body)
	}
	before := p.wallet(p.account)
	again := p.do("POST", "/v1/tasks/"+task.ID+"/cancel", p.secret, "")
	if typ, msg := errorOf(t, again); again.res.StatusCode != 409 || typ != "invalid_request" || !strings.Contains(msg, "already ended (cancelled)") {
		t.Fatalf("second cancel: %d %s", again.res.StatusCode, again.body)
	}
	if after := p.wallet(p.account); *after != *before {
		t.Fatalf("second cancel changed the wallet: %+v -> %+v", before, after)
	}
	row := p.row(p.account, r.id())
	if row.BillingOutcome != models.OutcomeNotChargedCancel || row.ChargedMicros != 0 || before.HeldMicros != 0 {
		t.Fatalf("cancelled task: row %+v wallet %+v", row, before)
	}

	// A task that outlives its TTL expires: not charged, hold released.
	r2, slow := p.createTask(p.secret, map[string]string{"sim_duration_ms": "60000"})
	if got := p.waitTask(slow.ID); got.Status != "expired" {
		t.Fatalf("slow task ended %s, want expired", got.Status)
	}
	row = p.row(p.account, r2.id())
	if row.BillingOutcome != models.OutcomeNotChargedExpired || row.ChargedMicros != 0 ||
		strings.Join(p.events(r2.id()), " ") != "hold_placed expired" {
		t.Fatalf("expired task: row %+v events %v", row, p.events(r2.id()))
	}
	// Cancelling after the end is refused too.
	if late := p.do("POST", "/v1/tasks/"+slow.ID+"/cancel", p.secret, ""); late.res.StatusCode != 409 {
		t.Fatalf("cancel after expiry: %d %s", late.res.StatusCode, late.body)
	}
	// Another account's task is not found.
	_, _, otherSecret := p.newAccount("other@example.com", models.MicrosPerUSD, models.KeyInput{Name: "x"})
	if o := p.do("GET", "/v1/tasks/"+slow.ID, otherSecret, ""); o.res.StatusCode != 404 {
		t.Fatalf("another account's task: %d", o.res.StatusCode)
	}
	if o := p.do("POST", "/v1/tasks/"+slow.ID+"/cancel", otherSecret, ""); o.res.StatusCode != 404 {
		t.Fatalf("cancel another account's task: %d", o.res.StatusCode)
	}
	if w := p.wallet(p.account); w.HeldMicros != 0 || w.BalanceMicros != 10*models.MicrosPerUSD {
		t.Fatalf("wallet %+v: nothing should be charged", w)
	}
	p.invariants(p.account)
}

func TestTasksSurviveARestart(t *testing.T) {
	noLeaks(t)
	videoPrice := catalogued(t, "tt-video-1").TaskPriceMicros
	p := newPlatform(t, fastTasks(time.Minute))
	r, task := p.createTask(p.secret, map[string]string{"sim_duration_ms": "500"})
	if r.res.StatusCode != 202 {
		t.Fatalf("create: %d", r.res.StatusCode)
	}
	// Stop the first instance's watchers, as a shutdown would, then start
	// a second instance on the same database.
	p.srv.Close()
	p.srv.App.Close()
	srv2 := testenv.NewServerOn(t, p.srv.DB, fastTasks(time.Minute))
	if n, err := srv2.App.ResumeTasks(context.Background()); err != nil || n != 1 {
		t.Fatalf("resumed %d tasks: %v", n, err)
	}
	p.srv = srv2
	if got := p.waitTask(task.ID); got.Status != "succeeded" {
		t.Fatalf("resumed task ended %s", got.Status)
	}
	if row := p.row(p.account, r.id()); row.BillingOutcome != models.OutcomeCharged || row.ChargedMicros != videoPrice {
		t.Fatalf("row %+v", row)
	}
	p.invariants(p.account)
}

// TestReapersEndEachHoldOnce runs two reapers at once over the same
// expired holds: each hold ends exactly once.
func TestReapersEndEachHoldOnce(t *testing.T) {
	path, dbURL := testenv.EmptyDB(t)
	open := func() *models.Store {
		db, err := models.Open(path, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if _, err := db.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		return models.NewStore(db)
	}
	a, b := open(), open()
	ctx := context.Background()
	acct := testenv.FundedKey(t, a, "reap@example.com", models.MicrosPerUSD, models.KeyInput{Name: "k"})
	k := acct.Key
	const n = 30
	for i := 0; i < n; i++ {
		r := &models.Request{ID: a.NewRequestID(), AccountID: &acct.ID, KeyID: &k.ID, Method: "POST",
			Path: "/v1/chat/completions", CreatedAt: time.Now().UTC()}
		if _, err := a.StartCall(ctx, r, k.ID, nil, 1000, time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(10 * time.Millisecond)
	var wg sync.WaitGroup
	counts := make([]int, 2)
	for i, s := range []*models.Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := s.ExpireHolds(ctx, time.Now())
			if err != nil {
				t.Error(err)
			}
			counts[i] = c
		}()
	}
	wg.Wait()
	if counts[0]+counts[1] != n {
		t.Fatalf("reapers ended %d + %d holds, want %d in all", counts[0], counts[1], n)
	}
	holds, outcomes := callStates(t, a, acct.ID)
	if expired := holds[models.HoldExpired]; expired != n {
		t.Fatalf("%d holds expired, want %d", expired, n)
	}
	if err := a.LedgerInvariant(ctx, acct.ID); err != nil {
		t.Fatal(err)
	}
	if pending := outcomes[models.OutcomePending]; pending != 0 {
		t.Fatalf("%d requests still pending", pending)
	}
}
