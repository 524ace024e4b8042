package handlers_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"ttconsole/handlers"
	"ttconsole/internal/testenv"
	"ttconsole/models"
	"ttconsole/upstream"
)

// TestUsageThatCannotBeTrue: an upstream that reports negative token
// counts, or counts past any real call's, never makes a call free. Such a
// completion is not billed and not delivered (as an unreadable answer is
// not); usage merely above the hold charges the hold; a stream whose
// usage chunk is negative is charged for the tokens it delivered.
func TestUsageThatCannotBeTrue(t *testing.T) {
	var answer atomic.Value // what the upstream answers next
	u := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := answer.Load().(string)
		if strings.HasPrefix(body, "data:") {
			w.Header().Set("Content-Type", "text/event-stream")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		w.Write([]byte(body))
	}))
	t.Cleanup(u.Close)
	p := newPlatform(t, testenv.Options{Adjust: func(a *handlers.App) {
		a.Upstream = upstream.NewHTTP(u.URL, 5*time.Second)
	}})
	completion := func(prompt, completion string) string {
		return `{"id":"c1","object":"chat.completion","model":"tt-chat-small","choices":[{"index":0,` +
			`"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],` +
			`"usage":{"prompt_tokens":` + prompt + `,"completion_tokens":` + completion + `,"total_tokens":0}}`
	}

	before := p.wallet(p.account).BalanceMicros
	answer.Store(completion("-1000000", "50"))
	r := p.chat(p.secret, 100, nil)
	if typ, _ := errorOf(t, r); r.res.StatusCode != http.StatusBadGateway || typ != "upstream_error" || strings.Contains(r.body, "hello") {
		t.Fatalf("negative prompt tokens: %d %s, want 502 upstream_error without the answer", r.res.StatusCode, r.body)
	}
	if row := p.row(p.account, r.id()); row.BillingOutcome != models.OutcomeNotChargedFailed || row.ChargedMicros != 0 {
		t.Fatalf("negative prompt tokens: row %+v, want not charged", row)
	}
	if after := p.wallet(p.account).BalanceMicros; after != before {
		t.Fatalf("negative prompt tokens moved the balance from %d to %d", before, after)
	}

	answer.Store(completion("7", "200000000000"))
	r = p.chat(p.secret, 100, nil)
	if typ, _ := errorOf(t, r); r.res.StatusCode != http.StatusBadGateway || typ != "upstream_error" {
		t.Fatalf("200 billion completion tokens: %d %s, want 502 upstream_error", r.res.StatusCode, r.body)
	}
	if row := p.row(p.account, r.id()); row.BillingOutcome != models.OutcomeNotChargedFailed || row.ChargedMicros != 0 {
		t.Fatalf("200 billion completion tokens: row %+v, want not charged", row)
	}

	answer.Store(completion("7", "5000000"))
	r = p.chat(p.secret, 100, nil)
	row := p.row(p.account, r.id())
	if r.res.StatusCode != http.StatusOK || row.ChargedMicros != row.HoldMicros || row.HoldMicros == 0 {
		t.Fatalf("usage far above the hold: %d, charged %d of a hold of %d; want 200 and the hold charged",
			r.res.StatusCode, row.ChargedMicros, row.HoldMicros)
	}

	answer.Store(`data: {"choices":[{"index":0,"delta":{"content":"abcdefgh"}}]}` + "\n\n" +
		`data: {"choices":[{"index":0,"delta":{"content":"ijklmnop"}}]}` + "\n\n" +
		`data: {"choices":[],"usage":{"prompt_tokens":-7,"completion_tokens":-4,"total_tokens":-11}}` + "\n\n" +
		"data: [DONE]\n\n")
	res := p.openStream(context.Background(), streamBody(100, nil))
	evs := events(res, -1)
	res.Body.Close()
	if len(evs) == 0 || evs[len(evs)-1] != "[DONE]" {
		t.Fatalf("stream events %q", evs)
	}
	srow := p.settled(res.Header.Get("X-TT-Request-ID"))
	if srow.BillingOutcome != models.OutcomeCharged || srow.CompletionTokens != 4 || srow.ChargedMicros <= 0 ||
		srow.ChargedMicros != chatCost(t, srow.PromptTokens, 4) {
		t.Fatalf("stream with negative usage: row %+v, want charged for the 4 tokens delivered", srow)
	}
	p.invariants(p.account)
}
