package handlers_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// usageCell is one row of the usage roll-up: what it counts.
type usageCell struct{ hour, key, model, outcome string }

type usageCounts struct{ requests, errors, prompt, completion, spend int64 }

// usageAgrees checks an account's usage roll-up against the two records
// it sums, read apart and summed here: every request of the log with a
// final outcome counted once, in the UTC hour it completed, by key, model
// and outcome; and every ledger charge, in the hour it was made, under its
// request's key, model and outcome (no key and no model for a late charge
// paid from a recharge). It returns the account's totals.
func usageAgrees(t *testing.T, db *models.DB, account string) (requests, spend int64) {
	t.Helper()
	want := map[usageCell]usageCounts{}
	var reqs []models.Request
	if err := db.W.Where("account_id = ?", account).Find(&reqs).Error; err != nil {
		t.Fatal(err)
	}
	byID := map[string]*models.Request{}
	for i := range reqs {
		r := &reqs[i]
		byID[r.ID] = r
		if r.BillingOutcome == models.OutcomePending {
			continue
		}
		if r.CompletedAt == nil {
			t.Fatalf("request %s has the outcome %s but no completion time", r.ID, r.BillingOutcome)
		}
		c := usageCell{r.CompletedAt.UTC().Format("2006-01-02 15"), deref(r.KeyID), r.Model, r.BillingOutcome}
		n := want[c]
		n.requests++
		if r.Status >= 400 {
			n.errors++
		}
		n.prompt += int64(r.PromptTokens)
		n.completion += int64(r.CompletionTokens)
		want[c] = n
		requests++
	}
	var ledger []models.LedgerEntry
	if err := db.W.Where("account_id = ? AND kind = ?", account, models.LedgerCharge).Find(&ledger).Error; err != nil {
		t.Fatal(err)
	}
	for _, e := range ledger {
		c := usageCell{hour: e.CreatedAt.UTC().Format("2006-01-02 15"), outcome: models.OutcomeCharged}
		if e.RequestID != nil {
			r := byID[*e.RequestID]
			if r == nil {
				t.Fatalf("ledger entry %s charges %s, not in the log", e.ID, *e.RequestID)
			}
			c.key, c.model, c.outcome = deref(r.KeyID), r.Model, r.BillingOutcome
		}
		n := want[c]
		n.spend -= e.AmountMicros
		want[c] = n
		spend -= e.AmountMicros
	}

	var rows []struct {
		HourUTC, KeyID, Model, Outcome                                string
		Requests, Errors, PromptTokens, CompletionTokens, SpendMicros int64
	}
	if err := db.W.Raw(`SELECT hour_utc, key_id, model, outcome, requests, errors, prompt_tokens, completion_tokens,
		spend_micros FROM usage_hourly WHERE account_id = ?`, account).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	got := map[usageCell]usageCounts{}
	for _, r := range rows {
		n := usageCounts{r.Requests, r.Errors, r.PromptTokens, r.CompletionTokens, r.SpendMicros}
		if n != (usageCounts{}) { // a row a late charge emptied
			got[usageCell{r.HourUTC, r.KeyID, r.Model, r.Outcome}] = n
		}
	}
	for c, w := range want {
		if got[c] != w {
			t.Errorf("usage of %+v: roll-up %+v, log and ledger %+v", c, got[c], w)
		}
	}
	for c, g := range got {
		if _, ok := want[c]; !ok {
			t.Errorf("usage of %+v: roll-up %+v, nothing in the log or the ledger", c, g)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return requests, spend
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TestUsageFollowsEveryOutcome drives calls to every outcome through the
// gateway, several at once so that they settle in shared group commits,
// and checks the roll-up against the request log and the ledger after
// each kind: successes, rejections, upstream failures, streams completed,
// cut by the upstream or left by the client, tasks that succeed, fail,
// are cancelled or expire, holds the reaper expires, and a call charged
// after its hold expired, whose unpaid part a recharge settles later.
func TestUsageFollowsEveryOutcome(t *testing.T) {
	noLeaks(t)
	p := newPlatform(t, fastTasks(1500*time.Millisecond))
	ctx := context.Background()
	_, scopedSecret := p.newKey(p.account, models.KeyInput{Name: "scoped", Models: []string{"tt-chat-large"}, RPM: "600"})
	poor, _, poorSecret := p.newAccount("poor@example.com", 100, models.KeyInput{Name: "poor", RPM: "600"})

	t.Run("calls", func(t *testing.T) {
		mix := []func(i int){
			func(i int) { p.chat(p.secret, 50, map[string]string{"sim_output_tokens": strconv.Itoa(1 + i%40)}) },
			func(i int) {
				p.do("POST", "/v1/embeddings", p.secret, fmt.Sprintf(`{"model":"tt-embed-1","input":"%s"}`, strings.Repeat("a", 1+i)))
			},
			func(i int) { p.chat(p.secret, 50, map[string]string{"sim_status": []string{"500", "502", "503"}[i%3]}) },
			func(i int) { p.do("POST", "/v1/chat/completions", p.secret, `{"model":1}`) },
			func(i int) { p.chat(scopedSecret, 50, nil) }, // 403: the model is not in the key's scope
			func(i int) { p.chat(poorSecret, 50, nil) },   // 402: the wallet cannot take the hold
			func(i int) { p.do("GET", "/v1/models", p.secret, "") },
			func(i int) {
				res := p.openStream(ctx, streamBody(100, map[string]string{"sim_output_tokens": "20", "sim_cut_after": strconv.Itoa(1 + i%5)}))
				events(res, -1)
				res.Body.Close()
			},
			func(i int) {
				res := p.openStream(ctx, streamBody(100, map[string]string{"sim_output_tokens": strconv.Itoa(1 + i%9)}))
				events(res, -1)
				res.Body.Close()
			},
		}
		var wg sync.WaitGroup
		for i := range 90 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mix[i%len(mix)](i)
			}()
		}
		wg.Wait()
		// A client that leaves a stream: settled on what it was sent.
		sctx, cancel := context.WithCancel(ctx)
		res := p.openStream(sctx, streamBody(1000, map[string]string{"sim_output_tokens": "1000", "sim_interval_ms": "20"}))
		events(res, 3)
		cancel()
		res.Body.Close()
		p.settled(res.Header.Get("X-TT-Request-ID"))
		// The failed calls are errors of the usage; the unidentified one (no key) belongs to no account.
		p.do("POST", "/v1/chat/completions", "", chatBody("tt-chat-small", 10, nil))

		n, spend := usageAgrees(t, p.srv.DB, p.account)
		if n != 81 || spend <= 0 {
			t.Fatalf("%d requests, %d µ$ spent: want the 81 calls of this account and some spend", n, spend)
		}
		if n, _ := usageAgrees(t, p.srv.DB, poor); n != 10 {
			t.Fatalf("the poor account's usage counts %d requests, want its 10 refused calls", n)
		}
	})

	t.Run("tasks", func(t *testing.T) {
		var ids []string
		for _, meta := range []map[string]string{
			{"sim_duration_ms": "100", "sim_outcome": "succeeded"},
			{"sim_duration_ms": "100", "sim_outcome": "failed"},
			{"sim_duration_ms": "60000"}, // expires
		} {
			r, task := p.createTask(p.secret, meta)
			if r.res.StatusCode != 202 {
				t.Fatalf("create: %d %s", r.res.StatusCode, r.body)
			}
			ids = append(ids, task.ID)
		}
		r, cancelled := p.createTask(p.secret, map[string]string{"sim_duration_ms": "60000"})
		if c := p.do("POST", "/v1/tasks/"+cancelled.ID+"/cancel", p.secret, ""); r.res.StatusCode != 202 || c.res.StatusCode != 200 {
			t.Fatalf("cancel: %d %s", c.res.StatusCode, c.body)
		}
		for _, id := range ids {
			p.waitTask(id)
		}
		usageAgrees(t, p.srv.DB, p.account)
		var outcomes []string
		p.srv.DB.W.Raw(`SELECT DISTINCT outcome FROM usage_hourly WHERE account_id = ? AND model = 'tt-video-1' ORDER BY outcome`,
			p.account).Scan(&outcomes)
		if strings.Join(outcomes, " ") != "charged not_charged_cancelled not_charged_expired not_charged_failed" {
			t.Fatalf("task outcomes in the roll-up: %v", outcomes)
		}
	})

	t.Run("reaper and a late charge", func(t *testing.T) {
		s := p.srv.Store
		a := testenv.FundedKey(t, s, "late@example.com", 10_000, models.KeyInput{Name: "late"})
		start := func(hold int64, ttl time.Duration) (*models.Hold, *models.Request) {
			r := &models.Request{ID: s.NewRequestID(), AccountID: &a.ID, KeyID: &a.Key.ID, Method: "POST",
				Path: "/v1/chat/completions", Model: "tt-chat-small", Status: 200, CreatedAt: time.Now().UTC()}
			h, err := s.StartCall(ctx, r, a.Key.ID, nil, hold, ttl)
			if err != nil {
				t.Fatal(err)
			}
			return h, r
		}
		_, _ = start(1000, time.Millisecond) // the reaper expires it; nothing settles it
		lateHold, late := start(4000, time.Millisecond)
		time.Sleep(5 * time.Millisecond)
		if n, err := s.ExpireHolds(ctx, time.Now()); err != nil || n != 2 {
			t.Fatalf("reaper ended %d holds: %v", n, err)
		}
		usageAgrees(t, p.srv.DB, a.ID)

		// Another call now holds most of the wallet: the late charge takes
		// what is left and the rest becomes the wallet's debt.
		otherHold, other := start(9000, time.Hour)
		late.PromptTokens, late.CompletionTokens = 7, 300
		if err := s.FinishCall(ctx, lateHold, late, 3000); err != nil {
			t.Fatal(err)
		}
		if w := p.wallet(a.ID); w.DebtMicros != 2000 {
			t.Fatalf("wallet %+v: want a debt of 2000 µ$ (3000 charged, 1000 available)", w)
		}
		if err := s.ReleaseCall(ctx, otherHold, other, models.OutcomeNotChargedFailed); err != nil {
			t.Fatal(err)
		}
		n, spend := usageAgrees(t, p.srv.DB, a.ID)
		if n != 3 || spend != 1000 {
			t.Fatalf("%d requests, %d µ$: want 3 requests and the 1000 µ$ the late charge took", n, spend)
		}
		// A recharge pays the debt: a charge of no request, counted under no key and no model.
		if _, err := s.Credit(ctx, a.ID, 5000, models.LedgerAdjustment, "top up", models.LedgerRef{}); err != nil {
			t.Fatal(err)
		}
		if _, spend := usageAgrees(t, p.srv.DB, a.ID); spend != 3000 {
			t.Fatalf("spend %d µ$ after the debt was paid, want 3000", spend)
		}
		p.invariants(a.ID)
	})
}

// TestUsageRangesAndGroupingsMatchTheLedger spreads an account's requests
// over ten days and checks random ranges, groupings and granularities:
// the Usage totals equal the requests completed and the ledger's charges
// made in the same hours, and the lines and periods add up to them.
func TestUsageRangesAndGroupingsMatchTheLedger(t *testing.T) {
	p := newPlatform(t)
	ctx := context.Background()
	s := p.srv.Store
	second, secondSecret := p.newKey(p.account, models.KeyInput{Name: "second", RPM: "600"})
	for i := range 30 {
		secret := p.secret
		if i%3 == 0 {
			secret = secondSecret
		}
		model := []string{"tt-chat-small", "tt-chat-large"}[i%2]
		p.do("POST", "/v1/chat/completions", secret, chatBody(model, 40, map[string]string{"sim_output_tokens": strconv.Itoa(1 + i)}))
	}
	// Calls rejected over the last ten days, as their rows say, and holds
	// the reaper expires in the days to come: the roll-up counts each in
	// the hour of its outcome.
	now := time.Now().UTC()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		at := now.Add(-time.Duration(rng.Int64N(int64(10 * 24 * time.Hour))))
		key := []string{p.key.ID, second.ID}[rng.IntN(2)]
		r := &models.Request{ID: s.NewRequestID(), AccountID: &p.account, KeyID: &key, Method: "POST",
			Path: "/v1/chat/completions", Model: []string{"tt-chat-small", "tt-chat-large", "tt-embed-1"}[rng.IntN(3)],
			Status: []int{400, 403, 429}[rng.IntN(3)], ErrorType: "invalid_request", CreatedAt: at, CompletedAt: &at,
			PromptTokens: rng.IntN(100)}
		if err := s.LogRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 12 {
		r := &models.Request{ID: s.NewRequestID(), AccountID: &p.account, KeyID: &p.key.ID, Method: "POST",
			Path: "/v1/chat/completions", Model: "tt-chat-small", Status: 200, CreatedAt: now}
		if _, err := s.StartCall(ctx, r, p.key.ID, nil, 1000, time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ExpireHolds(ctx, now.Add(time.Duration(i)*7*time.Hour+2*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	usageAgrees(t, p.srv.DB, p.account)

	first := now.Add(-11 * 24 * time.Hour).Truncate(time.Hour)
	for i := range 60 {
		from := first.Add(time.Duration(rng.IntN(13*24)) * time.Hour)
		to := from.Add(time.Duration(1+rng.IntN(14*24)) * time.Hour)
		group := []string{"model", "key", "day"}[rng.IntN(3)]
		gran := "day"
		if to.Sub(from) <= 14*24*time.Hour && rng.IntN(2) == 0 {
			gran = "hour"
		}
		zone := []*time.Location{time.UTC, mustZone(t, "Asia/Tokyo"), mustZone(t, "America/New_York")}[rng.IntN(3)]
		v := url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}, "group": {group}, "granularity": {gran}}
		q, err := models.ParseUsageQuery(v, zone, now)
		if err != nil {
			t.Fatalf("%v: %v", v, err)
		}
		if !q.From.Equal(from) || !q.To.Equal(to) {
			t.Fatalf("%v read as %s to %s", v, q.From, q.To)
		}
		rows, err := s.UsageRows(ctx, p.account, q)
		if err != nil {
			t.Fatal(err)
		}
		rep := models.BuildUsageReport(q, rows)

		var want models.UsageTotals
		p.srv.DB.W.Raw(`SELECT COUNT(*) AS requests, COALESCE(SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), 0) AS errors,
			COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens, COALESCE(SUM(completion_tokens), 0) AS completion_tokens
			FROM requests WHERE account_id = ? AND billing_outcome <> 'pending' AND completed_at >= ? AND completed_at < ?`,
			p.account, from, to).Scan(&want)
		p.srv.DB.W.Raw(`SELECT COALESCE(-SUM(amount_micros), 0) FROM ledger_entries
			WHERE account_id = ? AND kind = 'charge' AND created_at >= ? AND created_at < ?`, p.account, from, to).Scan(&want.SpendMicros)
		if rep.Total != want {
			t.Fatalf("case %d, %v in %s: usage %+v, log and ledger %+v", i, v, zone, rep.Total, want)
		}
		var byGroup, byPeriod models.UsageTotals
		for _, g := range rep.Groups {
			addTotals(&byGroup, g.UsageTotals)
		}
		for _, per := range rep.Periods {
			addTotals(&byPeriod, per.UsageTotals)
			var groups models.UsageTotals
			for _, g := range per.Groups {
				addTotals(&groups, g)
			}
			if groups != per.UsageTotals {
				t.Fatalf("case %d: period %s: groups %+v, period %+v", i, per.Start, groups, per.UsageTotals)
			}
		}
		if byGroup != want || byPeriod != want {
			t.Fatalf("case %d, %v: lines add up to %+v and periods to %+v, want %+v", i, v, byGroup, byPeriod, want)
		}
	}
}

func addTotals(t *models.UsageTotals, o models.UsageTotals) {
	t.Requests += o.Requests
	t.Errors += o.Errors
	t.PromptTokens += o.PromptTokens
	t.CompletionTokens += o.CompletionTokens
	t.SpendMicros += o.SpendMicros
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
