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

// usageAgrees checks an account's usage roll-up against the request log
// and the ledger (Store.UsageInvariant: every request with a final outcome
// counted once, in the hour it completed; every charge in its hour, under
// its request's key, model and outcome) and returns the roll-up's totals.
func usageAgrees(t *testing.T, s *models.Store, account string) (requests, spend int64) {
	t.Helper()
	if err := s.UsageInvariant(context.Background(), account); err != nil {
		t.Fatalf("the usage roll-up disagrees with the log and the ledger:\n%v", err)
	}
	now := time.Now()
	q, err := models.ParseUsageQuery(url.Values{"from": {now.AddDate(0, 0, -60).Format(time.RFC3339)},
		"to": {now.AddDate(0, 0, 30).Format(time.RFC3339)}}, time.UTC, now)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := s.UsageRows(context.Background(), account, q)
	if err != nil {
		t.Fatal(err)
	}
	total := models.BuildUsageReport(q, rows).Total
	return total.Requests, total.SpendMicros
}

// ledgerCharges is every charge of an account's ledger.
func ledgerCharges(t *testing.T, s *models.Store, account string) []models.LedgerEntry {
	t.Helper()
	var out []models.LedgerEntry
	for before := ""; ; {
		page, err := s.LedgerPage(context.Background(), account, before, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			if e.Kind == models.LedgerCharge {
				out = append(out, e)
			}
		}
		if len(page) < 500 {
			return out
		}
		before = page[len(page)-1].ID
	}
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

		n, spend := usageAgrees(t, p.srv.Store, p.account)
		if n != 81 || spend <= 0 {
			t.Fatalf("%d requests, %d µ$ spent: want the 81 calls of this account and some spend", n, spend)
		}
		if n, _ := usageAgrees(t, p.srv.Store, poor); n != 10 {
			t.Fatalf("the poor account's usage counts %d requests, want its 10 refused calls", n)
		}
	})

	t.Run("tasks", func(t *testing.T) {
		var tasks, requests []string
		for _, meta := range []map[string]string{
			{"sim_duration_ms": "100", "sim_outcome": "succeeded"},
			{"sim_duration_ms": "100", "sim_outcome": "failed"},
			{"sim_duration_ms": "60000"}, // expires
			{"sim_duration_ms": "60000"}, // cancelled
		} {
			r, task := p.createTask(p.secret, meta)
			if r.res.StatusCode != 202 {
				t.Fatalf("create: %d %s", r.res.StatusCode, r.body)
			}
			tasks, requests = append(tasks, task.ID), append(requests, r.id())
		}
		if c := p.do("POST", "/v1/tasks/"+tasks[3]+"/cancel", p.secret, ""); c.res.StatusCode != 200 {
			t.Fatalf("cancel: %d %s", c.res.StatusCode, c.body)
		}
		for _, id := range tasks {
			p.waitTask(id)
		}
		var outcomes []string
		for _, id := range requests {
			outcomes = append(outcomes, p.row(p.account, id).BillingOutcome)
		}
		if strings.Join(outcomes, " ") != "charged not_charged_failed not_charged_expired not_charged_cancelled" {
			t.Fatalf("the tasks' requests ended %v", outcomes)
		}
		usageAgrees(t, p.srv.Store, p.account)
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
		usageAgrees(t, s, a.ID)

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
		n, spend := usageAgrees(t, s, a.ID)
		if n != 3 || spend != 1000 {
			t.Fatalf("%d requests, %d µ$: want 3 requests and the 1000 µ$ the late charge took", n, spend)
		}
		// A recharge pays the debt: a charge of no request, counted under no key and no model.
		if _, err := s.Credit(ctx, a.ID, 5000, models.LedgerAdjustment, "top up", models.LedgerRef{}); err != nil {
			t.Fatal(err)
		}
		if _, spend := usageAgrees(t, s, a.ID); spend != 3000 {
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
	var ids []string // every request of the account
	for i := range 30 {
		secret := p.secret
		if i%3 == 0 {
			secret = secondSecret
		}
		model := []string{"tt-chat-small", "tt-chat-large"}[i%2]
		r := p.do("POST", "/v1/chat/completions", secret, chatBody(model, 40, map[string]string{"sim_output_tokens": strconv.Itoa(1 + i)}))
		ids = append(ids, r.id())
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
		ids = append(ids, r.ID)
	}
	for i := range 12 {
		r := &models.Request{ID: s.NewRequestID(), AccountID: &p.account, KeyID: &p.key.ID, Method: "POST",
			Path: "/v1/chat/completions", Model: "tt-chat-small", Status: 200, CreatedAt: now}
		if _, err := s.StartCall(ctx, r, p.key.ID, nil, 1000, time.Hour); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
		if _, err := s.ExpireHolds(ctx, now.Add(time.Duration(i)*7*time.Hour+2*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	usageAgrees(t, p.srv.Store, p.account)
	var log []*models.Request
	for _, id := range ids {
		log = append(log, p.row(p.account, id))
	}
	charges := ledgerCharges(t, s, p.account)

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

		// What the log and the ledger say of the range: the requests that
		// completed in it, and the charges made in it.
		var want models.UsageTotals
		for _, r := range log {
			if r.BillingOutcome == models.OutcomePending || r.CompletedAt.Before(from) || !r.CompletedAt.Before(to) {
				continue
			}
			want.Requests++
			if r.Status >= 400 {
				want.Errors++
			}
			want.PromptTokens += int64(r.PromptTokens)
			want.CompletionTokens += int64(r.CompletionTokens)
		}
		for _, e := range charges {
			if !e.CreatedAt.Before(from) && e.CreatedAt.Before(to) {
				want.SpendMicros -= e.AmountMicros
			}
		}
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
