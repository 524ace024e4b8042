package handlers_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"ttconsole/handlers"
	"ttconsole/internal/testenv"
	"ttconsole/models"
	"ttconsole/upstream"
)

// noLeaks fails the test if goroutines started during it outlive it and
// its servers.
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		goleak.VerifyNone(t, opt)
	})
}

func streamBody(maxTokens int, metadata map[string]string) string {
	b := chatBody("tt-chat-small", maxTokens, metadata)
	return strings.TrimSuffix(b, "}") + `,"stream":true}`
}

// openStream starts a streaming call and returns the response, unread.
func (p *platform) openStream(ctx context.Context, body string) *http.Response {
	p.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "POST", p.srv.URL+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+p.secret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	return res
}

// events reads SSE data lines until the stream ends or n events are read.
func events(res *http.Response, n int) []string {
	var out []string
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, d)
			if len(out) == n {
				break
			}
		}
	}
	return out
}

// settled waits for a request's row to leave pending.
func (p *platform) settled(id string) *models.Request {
	p.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := p.row(p.account, id)
		if r.BillingOutcome != models.OutcomePending {
			return r
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("request %s still pending", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStreamCompletedIsChargedFromFinalUsage(t *testing.T) {
	noLeaks(t)
	p := newPlatform(t)
	res := p.openStream(context.Background(), streamBody(100, map[string]string{"sim_output_tokens": "20"}))
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" ||
		res.Header.Get("X-TT-Request-ID") == "" || res.Header.Get("X-RateLimit-Remaining") == "" {
		t.Fatalf("stream answer %d %v", res.StatusCode, res.Header)
	}
	evs := events(res, -1)
	res.Body.Close()
	// 20 tokens, the finish chunk, [DONE]: no usage chunk, which this client did not ask for.
	if len(evs) != 22 || evs[len(evs)-1] != "[DONE]" || strings.Contains(strings.Join(evs, ""), `"usage"`) {
		t.Fatalf("stream events: %d, last %q", len(evs), evs[len(evs)-1])
	}
	row := p.settled(res.Header.Get("X-TT-Request-ID"))
	want := chatCost(t, 7, 20)
	if row.BillingOutcome != models.OutcomeCharged || row.ChargedMicros != want || row.CompletionTokens != 20 || !row.Stream {
		t.Fatalf("row %+v, want charged %d", row, want)
	}
	p.invariants(p.account)

	// A client that asks for the usage chunk gets it, before [DONE].
	body := strings.TrimSuffix(streamBody(100, map[string]string{"sim_output_tokens": "3"}), "}") +
		`,"stream_options":{"include_usage":true}}`
	res = p.openStream(context.Background(), body)
	evs = events(res, -1)
	res.Body.Close()
	if len(evs) != 6 || !strings.Contains(evs[4], `"completion_tokens":3`) || evs[5] != "[DONE]" {
		t.Fatalf("stream with include_usage: %q", evs)
	}
}

func TestStreamCutByUpstreamIsChargedForDeliveredTokens(t *testing.T) {
	noLeaks(t)
	p := newPlatform(t)
	res := p.openStream(context.Background(), streamBody(100, map[string]string{"sim_output_tokens": "20", "sim_cut_after": "5"}))
	evs := events(res, -1)
	res.Body.Close()
	if len(evs) != 6 || !strings.Contains(evs[5], `"upstream_error"`) {
		t.Fatalf("events %q: want 5 chunks and an error event", evs)
	}
	row := p.settled(res.Header.Get("X-TT-Request-ID"))
	if row.BillingOutcome != models.OutcomeChargedPartial || row.CompletionTokens != 5 ||
		row.ChargedMicros != chatCost(t, 7, 5) ||
		row.OutcomeDetail != "stream cut off by upstream after 5 tokens" {
		t.Fatalf("row %+v", row)
	}
	p.invariants(p.account)
}

// TestStreamStoppedBeforeAnyTokenIsNotCharged: a stream the upstream
// breaks, or the client leaves, before a single token was delivered is
// not charged (not even its prompt) and its hold is released: the call
// failed, or was cancelled, before anything was used.
func TestStreamStoppedBeforeAnyTokenIsNotCharged(t *testing.T) {
	noLeaks(t)
	p := newPlatform(t)
	before := p.wallet(p.account)
	res := p.openStream(context.Background(), streamBody(100, map[string]string{"sim_output_tokens": "20", "sim_cut_after": "0"}))
	evs := events(res, -1)
	res.Body.Close()
	if len(evs) != 1 || !strings.Contains(evs[0], `"upstream_error"`) || !strings.Contains(evs[0], "before any token; not charged") {
		t.Fatalf("events %q: want one error event saying nothing was charged", evs)
	}
	row := p.settled(res.Header.Get("X-TT-Request-ID"))
	if row.BillingOutcome != models.OutcomeNotChargedFailed || row.ChargedMicros != 0 || row.HoldStatus != models.HoldReleased ||
		row.OutcomeDetail != "stream cut off by upstream before any token" {
		t.Fatalf("row %+v: want not charged, hold released", row)
	}

	if after := p.wallet(p.account); after.BalanceMicros != before.BalanceMicros || after.HeldMicros != 0 {
		t.Fatalf("wallet %+v -> %+v: want nothing charged or held", before, after)
	}
	p.invariants(p.account)

	// An upstream that answers its headers and then thinks: the client
	// leaves before the first token.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	p = newPlatform(t, testenv.Options{Adjust: func(a *handlers.App) { a.Upstream = upstream.NewHTTP(slow.URL, 5*time.Second) }})
	before = p.wallet(p.account)
	ctx, cancel := context.WithCancel(context.Background())
	res = p.openStream(ctx, streamBody(100, nil))
	cancel() // the headers came; the first token has not
	res.Body.Close()
	row = p.settled(res.Header.Get("X-TT-Request-ID"))
	if row.BillingOutcome != models.OutcomeNotChargedCancel || row.ChargedMicros != 0 || row.HoldStatus != models.HoldReleased ||
		row.OutcomeDetail != "client disconnected before any token" {
		t.Fatalf("row %+v: want not charged (cancelled), hold released", row)
	}
	if after := p.wallet(p.account); after.BalanceMicros != before.BalanceMicros || after.HeldMicros != 0 {
		t.Fatalf("wallet %+v -> %+v: want nothing charged or held", before, after)
	}
	p.invariants(p.account)
}

func TestStreamClientDisconnectSettlesOnDeliveredTokens(t *testing.T) {
	noLeaks(t)
	p := newPlatform(t)
	ctx, cancel := context.WithCancel(context.Background())
	res := p.openStream(ctx, streamBody(1000, map[string]string{"sim_output_tokens": "1000", "sim_interval_ms": "20"}))
	got := events(res, 5)
	cancel()
	res.Body.Close()
	if len(got) != 5 {
		t.Fatalf("read %d events", len(got))
	}
	start := time.Now()
	row := p.settled(res.Header.Get("X-TT-Request-ID"))
	if took := time.Since(start); took > time.Second {
		t.Fatalf("settled %s after the client left, want within a second", took)
	}
	if row.BillingOutcome != models.OutcomeChargedPartial || row.CompletionTokens < 5 || row.CompletionTokens > 20 ||
		!strings.HasPrefix(row.OutcomeDetail, "client disconnected after") {
		t.Fatalf("row %+v: want about 5 tokens charged", row)
	}
	if row.ChargedMicros != chatCost(t, 7, row.CompletionTokens) {
		t.Fatalf("charged %d for %d tokens", row.ChargedMicros, row.CompletionTokens)
	}
	p.invariants(p.account)
}

func TestStreamUpstreamErrorBeforeFirstByte(t *testing.T) {
	noLeaks(t)
	p := newPlatform(t)
	r := p.do("POST", "/v1/chat/completions", p.secret, streamBody(100, map[string]string{"sim_status": "500"}))
	if typ, _ := errorOf(t, r); r.res.StatusCode != 502 || typ != "upstream_error" {
		t.Fatalf("%d %s", r.res.StatusCode, r.body)
	}
	row := p.row(p.account, r.id())
	if row.BillingOutcome != models.OutcomeNotChargedFailed || row.ChargedMicros != 0 || !row.Stream {
		t.Fatalf("row %+v", row)
	}
	if w := p.wallet(p.account); w.HeldMicros != 0 {
		t.Fatalf("hold not released: %+v", w)
	}
	p.invariants(p.account)
}
