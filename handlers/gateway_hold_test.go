package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"ttconsole/internal/testenv"
	"ttconsole/models"
	"ttconsole/upstream"
)

// catalogue is the model catalogue the migrations make, read once
// through the store: the prices calls are held and charged at.
var catalogue struct {
	once   sync.Once
	models map[string]models.CatalogModel
	err    error
}

// catalogued returns a model of the catalogue.
func catalogued(t testing.TB, id string) models.CatalogModel {
	t.Helper()
	catalogue.once.Do(func() {
		ms, err := models.NewStore(testenv.DB(t)).Models(context.Background())
		catalogue.models, catalogue.err = map[string]models.CatalogModel{}, err
		for _, m := range ms {
			catalogue.models[m.ID] = m
		}
	})
	m, ok := catalogue.models[id]
	if !ok {
		t.Fatalf("%s is not in the catalogue (%v)", id, catalogue.err)
	}
	return m
}

// tokenCost prices tokens of a model at the catalogue's prices.
func tokenCost(t testing.TB, model string, prompt, completion int) int64 {
	t.Helper()
	m := catalogued(t, model)
	return models.TokenCost(prompt, completion, m.InputMicrosPerMTok, m.OutputMicrosPerMTok)
}

// chatCost prices tokens of tt-chat-small.
func chatCost(t testing.TB, prompt, completion int) int64 {
	t.Helper()
	return tokenCost(t, "tt-chat-small", prompt, completion)
}

// TestHoldCoversEverythingTheUpstreamBills: n completions and every byte
// of the body are held for; usage above the hold charges the hold and is
// counted.
func TestHoldCoversEverythingTheUpstreamBills(t *testing.T) {
	u := newExactUpstream(t)
	p := platformOn(t, u)
	msgs := `"messages":[{"role":"user","content":"Say hello to the platform."}]`

	t.Run("n completions", func(t *testing.T) {
		body := `{"model":"tt-chat-small",` + msgs + `,"max_tokens":100,"n":8}`
		r := p.do("POST", "/v1/chat/completions", p.secret, body)
		if r.res.StatusCode != 200 {
			t.Fatalf("chat: %d %.300s", r.res.StatusCode, r.body)
		}
		row := p.row(p.account, r.id())
		if row.HoldMicros != chatCost(t, upstream.Tokens(body), 800) || row.CompletionTokens != 800 ||
			row.ChargedMicros != chatCost(t, 7, 800) || row.BillingOutcome != models.OutcomeCharged {
			t.Fatalf("row %+v, want a hold of %d and a charge of %d", row, chatCost(t, upstream.Tokens(body), 800), chatCost(t, 7, 800))
		}
	})

	t.Run("max_completion_tokens", func(t *testing.T) {
		body := `{"model":"tt-chat-small",` + msgs + `,"max_completion_tokens":50}`
		r := p.do("POST", "/v1/chat/completions", p.secret, body)
		if r.res.StatusCode != 200 {
			t.Fatalf("chat: %d %.300s", r.res.StatusCode, r.body)
		}
		calls := u.received()
		if got := calls[len(calls)-1].req.MaxTokens; got == nil || *got != 50 {
			t.Fatalf("the upstream received %s", calls[len(calls)-1].raw)
		}
		if row := p.row(p.account, r.id()); row.HoldMicros != chatCost(t, upstream.Tokens(body), 50) {
			t.Fatalf("row %+v", row)
		}
		for _, extra := range []string{`"max_completion_tokens":50,"max_tokens":60`, `"max_completion_tokens":20000`, `"max_completion_tokens":0`} {
			r := p.do("POST", "/v1/chat/completions", p.secret, `{"model":"tt-chat-small",`+msgs+`,`+extra+`}`)
			if r.res.StatusCode != 400 {
				t.Fatalf("%s: %d %.300s", extra, r.res.StatusCode, r.body)
			}
			if typ, msg := errorOf(t, r); typ != "invalid_request" || !strings.Contains(msg, `"max_completion_tokens"`) {
				t.Fatalf("%s: %s", extra, r.body)
			}
		}
	})

	t.Run("n out of range", func(t *testing.T) {
		for _, n := range []string{"0", "-1", "129", "1.5", `"8"`} {
			r := p.do("POST", "/v1/chat/completions", p.secret, `{"model":"tt-chat-small",`+msgs+`,"n":`+n+`}`)
			if r.res.StatusCode != 400 {
				t.Fatalf("n=%s: %d %.300s", n, r.res.StatusCode, r.body)
			}
			if typ, msg := errorOf(t, r); typ != "invalid_request" || !strings.Contains(msg, `"n"`) {
				t.Fatalf("n=%s: %s", n, r.body)
			}
		}
	})

	// 200 KB of tools: at least 50,000 prompt tokens held.
	schema := `{"type":"string","description":"` + strings.Repeat("d", 200) + `"}`
	var props []string
	for i := 0; len(props)*len(schema) < 200_000; i++ {
		props = append(props, fmt.Sprintf(`"p%d":%s`, i, schema))
	}
	tools := `[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{` + strings.Join(props, ",") + `}}}}]`
	toolsBody := `{"model":"tt-chat-small",` + msgs + `,"max_tokens":10,"tools":` + tools + `}`
	toolsHold := chatCost(t, upstream.Tokens(toolsBody), 10)

	t.Run("tools", func(t *testing.T) {
		r := p.do("POST", "/v1/chat/completions", p.secret, toolsBody)
		if r.res.StatusCode != 200 {
			t.Fatalf("chat: %d %.300s", r.res.StatusCode, r.body)
		}
		row := p.row(p.account, r.id())
		billed := chatCost(t, 7+upstream.Tokens(tools), 10)
		if row.HoldMicros != toolsHold || row.HoldMicros < chatCost(t, 50_000, 10) || row.ChargedMicros != billed {
			t.Fatalf("row %+v, want a hold of %d and a charge of %d", row, toolsHold, billed)
		}
	})

	t.Run("shortfall at the boundary", func(t *testing.T) {
		account, _, secret := p.newAccount("boundary@example.com", toolsHold-1, models.KeyInput{Name: "b", RPM: "600"})
		r := p.do("POST", "/v1/chat/completions", secret, toolsBody)
		if r.res.StatusCode != http.StatusPaymentRequired {
			t.Fatalf("one µ$ short: %d %.300s", r.res.StatusCode, r.body)
		}
		if typ, _ := errorOf(t, r); typ != "billing_shortfall" {
			t.Fatalf("one µ$ short: %s", r.body)
		}
		calls := len(u.received())
		if _, err := p.srv.Store.Credit(t.Context(), account, 1, models.LedgerAdjustment, "one more", models.LedgerRef{}); err != nil {
			t.Fatal(err)
		}
		r = p.do("POST", "/v1/chat/completions", secret, toolsBody)
		if r.res.StatusCode != 200 || len(u.received()) != calls+1 {
			t.Fatalf("exactly the hold: %d %.300s", r.res.StatusCode, r.body)
		}
		p.invariants(account)
	})

	t.Run("embeddings", func(t *testing.T) {
		body := `{"model":"tt-embed-1","input":"hi","user":"` + strings.Repeat("u", 40_000) + `"}`
		r := p.do("POST", "/v1/embeddings", p.secret, body)
		if r.res.StatusCode != 200 {
			t.Fatalf("embeddings: %d %.300s", r.res.StatusCode, r.body)
		}
		row := p.row(p.account, r.id())
		if row.HoldMicros != tokenCost(t, "tt-embed-1", upstream.Tokens(body), 0) || row.ChargedMicros != 1 {
			t.Fatalf("row %+v", row)
		}
	})

	t.Run("usage above the hold", func(t *testing.T) {
		u.mu.Lock()
		u.extraCompletion = 5000
		u.mu.Unlock()
		defer func() { u.mu.Lock(); u.extraCompletion = 0; u.mu.Unlock() }()
		before := metric(t, p, "tt_gateway_usage_over_hold_total")
		body := `{"model":"tt-chat-small",` + msgs + `,"max_tokens":10}`
		r := p.do("POST", "/v1/chat/completions", p.secret, body)
		if r.res.StatusCode != 200 {
			t.Fatalf("chat: %d %.300s", r.res.StatusCode, r.body)
		}
		row := p.row(p.account, r.id())
		if row.HoldMicros != chatCost(t, upstream.Tokens(body), 10) || row.ChargedMicros != row.HoldMicros {
			t.Fatalf("row %+v, want charged exactly the hold", row)
		}
		r = p.do("POST", "/v1/chat/completions", p.secret, strings.TrimSuffix(body, "}")+`,"stream":true}`)
		if r.res.StatusCode != 200 || !strings.Contains(r.body, "[DONE]") {
			t.Fatalf("stream: %d %.300s", r.res.StatusCode, r.body)
		}
		row = p.settled(r.id())
		if row.ChargedMicros != row.HoldMicros || row.BillingOutcome != models.OutcomeCharged {
			t.Fatalf("stream row %+v, want charged exactly the hold", row)
		}
		if before != "0" || metric(t, p, "tt_gateway_usage_over_hold_total") != "2" {
			t.Fatalf("over-hold metric %s → %s, want 0 → 2", before, metric(t, p, "tt_gateway_usage_over_hold_total"))
		}
	})
	p.invariants(p.account)
}

// TestSimulatorBillsEveryChoice: through the built-in simulator too, n
// completions are held for and charged.
func TestSimulatorBillsEveryChoice(t *testing.T) {
	p := newPlatform(t)
	body := `{"model":"tt-chat-small","messages":[{"role":"user","content":"Say hello to the platform."}],"max_tokens":100,"n":4,"metadata":{"sim_output_tokens":"5"}}`
	r := p.do("POST", "/v1/chat/completions", p.secret, body)
	if r.res.StatusCode != 200 || strings.Count(r.body, `"index"`) != 4 {
		t.Fatalf("chat: %d %.300s", r.res.StatusCode, r.body)
	}
	row := p.row(p.account, r.id())
	if row.HoldMicros != chatCost(t, upstream.Tokens(body), 400) || row.CompletionTokens != 20 || row.ChargedMicros != chatCost(t, 7, 20) {
		t.Fatalf("row %+v", row)
	}
	p.invariants(p.account)
}
