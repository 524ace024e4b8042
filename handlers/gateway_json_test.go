package handlers_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"ttconsole/handlers"
	"ttconsole/internal/testenv"
	"ttconsole/models"
	"ttconsole/upstream"
)

// exactUpstream is an OpenAI-compatible server that reads JSON as such
// servers do, unlike the built-in simulator (which shares the gateway's Go
// decoder): keys are case-sensitive and a duplicate key keeps its last
// value. It bills as a model that never stops early: n completions of
// max_tokens each, and every message and tool as prompt.
type exactUpstream struct {
	*httptest.Server
	// extraCompletion is added to the usage it reports, as an upstream
	// whose billing the gateway did not foresee.
	extraCompletion int

	mu    sync.Mutex
	calls []exactCall
}

type exactCall struct {
	raw []byte
	req exactRequest
}

type exactRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	} `json:"messages"`
	MaxTokens     *int           `json:"max_tokens"`
	N             *int           `json:"n"`
	Stream        bool           `json:"stream"`
	StreamOptions map[string]any `json:"stream_options"`
	Tools         jsontext.Value `json:"tools"`
	Input         jsontext.Value `json:"input"`
}

func newExactUpstream(t *testing.T) *exactUpstream {
	u := &exactUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.Close)
	return u
}

// platformOn starts the product with u as its upstream.
func platformOn(t *testing.T, u *exactUpstream) *platform {
	return newPlatform(t, testenv.Options{Adjust: func(a *handlers.App) {
		a.Upstream = upstream.NewHTTP(u.URL, 5*time.Second)
	}})
}

func (u *exactUpstream) received() []exactCall {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]exactCall(nil), u.calls...)
}

func (u *exactUpstream) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var req exactRequest
	if err := jsonv2.Unmarshal(raw, &req, jsontext.AllowDuplicateNames(true)); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":{"message":%q}}`, err.Error())
		return
	}
	u.mu.Lock()
	u.calls = append(u.calls, exactCall{raw: raw, req: req})
	extra := u.extraCompletion
	u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path == "/v1/embeddings" {
		fmt.Fprintf(w, `{"object":"list","data":[],"usage":{"prompt_tokens":%d,"total_tokens":%d}}`,
			upstream.Tokens(string(req.Input)), upstream.Tokens(string(req.Input)))
		return
	}
	maxTokens, n := 16384, 1
	if req.MaxTokens != nil {
		maxTokens = *req.MaxTokens
	}
	if req.N != nil {
		n = *req.N
	}
	prompt := upstream.Tokens(string(req.Tools))
	for _, m := range req.Messages {
		prompt += upstream.Tokens(m.Content)
	}
	usage := fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}`,
		prompt, n*maxTokens+extra, prompt+n*maxTokens+extra)
	text := strings.Repeat("word", maxTokens) // 4 bytes a token
	if !req.Stream {
		var choices []string
		for i := range n {
			choices = append(choices, fmt.Sprintf(`{"index":%d,"message":{"role":"assistant","content":%q},"finish_reason":"length"}`, i, text))
		}
		fmt.Fprintf(w, `{"id":"x","object":"chat.completion","model":%q,"choices":[%s],"usage":%s}`,
			req.Model, strings.Join(choices, ","), usage)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	for i := range n {
		fmt.Fprintf(w, "data: {\"choices\":[{\"index\":%d,\"delta\":{\"content\":%q}}]}\n\n", i, text)
	}
	if req.StreamOptions["include_usage"] == true {
		fmt.Fprintf(w, "data: {\"choices\":[],\"usage\":%s}\n\n", usage)
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
}

// TestGatewayReadsJSONAsTheUpstreamDoes sends bodies that a Go decoder and
// an exact JSON reader understand differently: each is refused with a 400
// naming the key, reaches no upstream, holds and charges nothing.
func TestGatewayReadsJSONAsTheUpstreamDoes(t *testing.T) {
	u := newExactUpstream(t)
	p := platformOn(t, u)
	_, small, smallSecret := p.newAccount("scoped@example.com", 10*models.MicrosPerUSD,
		models.KeyInput{Name: "small only", RPM: "600", Models: []string{"tt-chat-small"}})
	msgs := `"messages":[{"role":"user","content":"Say hello to the platform."}]`
	cases := []struct {
		name, path, secret, body, key string
	}{
		{"max_tokens in capitals", "/v1/chat/completions", p.secret,
			`{"model":"tt-chat-small",` + msgs + `,"max_tokens":2000,"MAX_TOKENS":1}`, "MAX_TOKENS"},
		{"model in capitals past a scoped key", "/v1/chat/completions", smallSecret,
			`{"model":"tt-chat-large",` + msgs + `,"max_tokens":10,"MODEL":"tt-chat-small"}`, "MODEL"},
		{"stream in capitals", "/v1/chat/completions", p.secret,
			`{"model":"tt-chat-small",` + msgs + `,"max_tokens":10,"stream":false,"STREAM":true}`, "STREAM"},
		{"a case variant alone", "/v1/chat/completions", p.secret,
			`{"model":"tt-chat-small",` + msgs + `,"Max_Tokens":5}`, "Max_Tokens"},
		{"a Unicode case fold", "/v1/chat/completions", p.secret,
			`{"model":"tt-chat-small",` + msgs + `,"max_tokens":10,"ſtream":true}`, "ſtream"},
		{"model twice", "/v1/chat/completions", smallSecret,
			`{"model":"tt-chat-small",` + msgs + `,"max_tokens":10,"model":"tt-chat-large"}`, "model"},
		{"Content beside content", "/v1/chat/completions", p.secret,
			`{"model":"tt-chat-small","messages":[{"role":"user","content":"hi","Content":"` + strings.Repeat("x", 4000) + `"}],"max_tokens":10}`, "Content"},
		{"a duplicate in stream_options", "/v1/chat/completions", p.secret,
			`{"model":"tt-chat-small",` + msgs + `,"max_tokens":10,"stream":true,"stream_options":{"include_usage":true,"include_usage":false}}`, "include_usage"},
		{"a duplicate in metadata", "/v1/chat/completions", p.secret,
			`{"model":"tt-chat-small",` + msgs + `,"max_tokens":10,"metadata":{"a":"1","a":"2"}}`, `"a"`},
		{"a duplicate deep in tools", "/v1/chat/completions", p.secret,
			`{"model":"tt-chat-small",` + msgs + `,"max_tokens":10,"tools":[{"type":"function","function":{"name":"f","name":"g"}}]}`, "name"},
		{"n in capitals", "/v1/chat/completions", p.secret,
			`{"model":"tt-chat-small",` + msgs + `,"max_tokens":10,"N":8}`, `"N"`},
		{"max_completion_tokens in capitals", "/v1/chat/completions", p.secret,
			`{"model":"tt-chat-small",` + msgs + `,"max_tokens":10,"Max_Completion_Tokens":9000}`, "Max_Completion_Tokens"},
		{"embeddings input in capitals", "/v1/embeddings", p.secret,
			`{"model":"tt-embed-1","input":"hi","INPUT":"` + strings.Repeat("x", 4000) + `"}`, "INPUT"},
		{"task model twice", "/v1/tasks", p.secret,
			`{"model":"tt-video-1","input":"a cat","model":"tt-video-1"}`, "model"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			account := p.account
			if tc.secret == smallSecret {
				account = small.AccountID
			}
			before := p.wallet(account)
			r := p.do("POST", tc.path, tc.secret, tc.body)
			if r.res.StatusCode != http.StatusBadRequest {
				t.Fatalf("%d %.300s, want a 400 invalid_request naming %s", r.res.StatusCode, r.body, tc.key)
			}
			if typ, msg := errorOf(t, r); typ != "invalid_request" || !strings.Contains(msg, tc.key) {
				t.Fatalf("%s, want a 400 invalid_request naming %s", r.body, tc.key)
			}
			if n := len(u.received()); n != 0 {
				t.Fatalf("the upstream received %d calls: %s", n, u.received()[0].raw)
			}
			row := p.row(account, r.id())
			if row.Status != 400 || row.ErrorType != "invalid_request" || row.HoldMicros != 0 || row.ChargedMicros != 0 ||
				row.BillingOutcome != models.OutcomeNotChargedRejected {
				t.Fatalf("row %+v", row)
			}
			if after := p.wallet(account); after.BalanceMicros != before.BalanceMicros || after.HeldMicros != 0 {
				t.Fatalf("wallet moved: %+v → %+v", before, after)
			}
		})
	}
	p.invariants(p.account)
	p.invariants(small.AccountID)
}

// TestGatewayForwardsWhatItPriced: the upstream receives the client's
// bytes, with only the fields the gateway sets added, and reads from them
// what the gateway checked and held for.
func TestGatewayForwardsWhatItPriced(t *testing.T) {
	u := newExactUpstream(t)
	p := platformOn(t, u)
	// Odd spacing, key order, escapes and keys the gateway does not read,
	// some of which differ only in case from each other.
	tools := `[{"type":"function","function":{"name":"lookup","parameters":{"type":"object","properties":{"id":{"type":"string"},"ID":{"type":"integer"}}}}}]`
	plain := "{ \"messages\" : [ {\"role\":\"user\", \"content\":\"caf\\u00e9 <b>&amp;</b> \\\"q\\\"\", \"name\":\"x\"} ],\n" +
		"  \"model\":\"tt-chat-small\", \"temperature\": 0.50, \"tools\": " + tools + ", \"max_tokens\": 12 }"
	r := p.do("POST", "/v1/chat/completions", p.secret, plain)
	if r.res.StatusCode != 200 {
		t.Fatalf("chat: %d %.300s", r.res.StatusCode, r.body)
	}
	calls := u.received()
	if len(calls) != 1 || !bytes.Equal(calls[0].raw, []byte(plain)) {
		t.Fatalf("the upstream received %q, want the bytes sent", calls[0].raw)
	}

	// Without max_tokens the gateway adds the one it held for, and nothing else changes.
	noMax := strings.Replace(plain, `, "max_tokens": 12 }`, ` }`, 1)
	r = p.do("POST", "/v1/chat/completions", p.secret, noMax)
	if r.res.StatusCode != 200 {
		t.Fatalf("chat without max_tokens: %d %.300s", r.res.StatusCode, r.body)
	}
	calls = u.received()
	got := calls[1]
	if want := `{"max_tokens":1024,` + noMax[1:]; string(got.raw) != want {
		t.Fatalf("the upstream received\n%s\nwant\n%s", got.raw, want)
	}
	row := p.row(p.account, r.id())
	if got.req.MaxTokens == nil || *got.req.MaxTokens != models.DefaultMaxTokens || row.CompletionTokens != models.DefaultMaxTokens ||
		row.ChargedMicros > row.HoldMicros || row.BillingOutcome != models.OutcomeCharged {
		t.Fatalf("upstream read %+v; row %+v", got.req, row)
	}

	// A stream gets the gateway's max_tokens and usage chunk; the client's
	// other bytes are untouched.
	stream := strings.Replace(plain, `"max_tokens": 12`, `"stream" : true, "max_tokens": 12`, 1)
	r = p.do("POST", "/v1/chat/completions", p.secret, stream)
	if r.res.StatusCode != 200 || !strings.Contains(r.body, "[DONE]") {
		t.Fatalf("stream: %d %.300s", r.res.StatusCode, r.body)
	}
	got = u.received()[2]
	if !got.req.Stream || got.req.MaxTokens == nil || *got.req.MaxTokens != 12 || got.req.StreamOptions["include_usage"] != true ||
		!bytes.Contains(got.raw, []byte(tools)) || !bytes.Contains(got.raw, []byte(`"content":"caf\u00e9 <b>&amp;</b> \"q\""`)) {
		t.Fatalf("the upstream received %s", got.raw)
	}
	row = p.settled(r.id())
	if row.CompletionTokens != 12 || row.BillingOutcome != models.OutcomeCharged || row.ChargedMicros > row.HoldMicros {
		t.Fatalf("stream row %+v", row)
	}
	p.invariants(p.account)
}

// The exact upstream must itself read as the issue describes, or the
// tests above prove nothing.
func TestExactUpstreamReadsKeysExactly(t *testing.T) {
	var req exactRequest
	err := jsonv2.Unmarshal([]byte(`{"max_tokens":2000,"MAX_TOKENS":1,"model":"a","model":"b"}`), &req, jsontext.AllowDuplicateNames(true))
	if err != nil || req.MaxTokens == nil || *req.MaxTokens != 2000 || req.Model != "b" {
		t.Fatalf("read %+v, %v", req, err)
	}
	var std struct {
		MaxTokens int `json:"max_tokens"`
	}
	if json.Unmarshal([]byte(`{"max_tokens":2000,"MAX_TOKENS":1}`), &std); std.MaxTokens != 1 {
		t.Fatalf("encoding/json read max_tokens %d; the attack relies on 1", std.MaxTokens)
	}
}
