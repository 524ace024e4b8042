package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"ttconsole/handlers"
	"ttconsole/internal/testenv"
	"ttconsole/models"
	"ttconsole/upstream"
)

// platform is a test server with one funded account and its key.
type platform struct {
	t       *testing.T
	srv     *testenv.Server
	account string
	secret  string
	key     *models.APIKey
}

func newPlatform(t *testing.T, opts ...testenv.Options) *platform {
	t.Helper()
	srv := testenv.NewServer(t, opts...)
	p := &platform{t: t, srv: srv}
	p.account, p.key, p.secret = p.newAccount("owner@example.com", 10*models.MicrosPerUSD, models.KeyInput{Name: "default", RPM: "600"})
	return p
}

// newAccount makes an account with a balance and one key.
func (p *platform) newAccount(email string, balance int64, in models.KeyInput) (string, *models.APIKey, string) {
	p.t.Helper()
	a := testenv.FundedKey(p.t, p.srv.Store, email, balance, in)
	return a.ID, a.Key, a.Secret
}

func (p *platform) newKey(accountID string, in models.KeyInput) (*models.APIKey, string) {
	p.t.Helper()
	k, secret, err := p.srv.Store.CreateAPIKey(context.Background(), accountID, models.AdminCLI, in)
	if err != nil {
		p.t.Fatal(err)
	}
	return k, secret
}

// apiResult is one answer of the gateway.
type apiResult struct {
	res  *http.Response
	body string
}

func (r apiResult) id() string { return r.res.Header.Get("X-TT-Request-ID") }

func (p *platform) do(method, path, secret, body string, hdr ...string) apiResult {
	p.t.Helper()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	} else {
		rd = strings.NewReader("")
	}
	req, err := http.NewRequest(method, p.srv.URL+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	return apiResult{res: res, body: testenv.Body(p.t, res)}
}

func chatBody(model string, maxTokens int, metadata map[string]string) string {
	m := map[string]any{"model": model, "messages": []map[string]string{{"role": "user", "content": "Say hello to the platform."}}}
	if maxTokens > 0 {
		m["max_tokens"] = maxTokens
	}
	if metadata != nil {
		m["metadata"] = metadata
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func (p *platform) chat(secret string, maxTokens int, metadata map[string]string) apiResult {
	p.t.Helper()
	return p.do("POST", "/v1/chat/completions", secret, chatBody("tt-chat-small", maxTokens, metadata))
}

// errorOf checks the exact error shape and returns type and message.
func errorOf(t *testing.T, r apiResult) (string, string) {
	t.Helper()
	var shape map[string]map[string]any
	if err := json.Unmarshal([]byte(r.body), &shape); err != nil || len(shape) != 1 || len(shape["error"]) != 2 {
		t.Fatalf("body %q is not exactly {\"error\":{\"type\",\"message\"}}", r.body)
	}
	typ, ok1 := shape["error"]["type"].(string)
	msg, ok2 := shape["error"]["message"].(string)
	if !ok1 || !ok2 || msg == "" {
		t.Fatalf("error fields are not strings: %s", r.body)
	}
	return typ, msg
}

func (p *platform) wallet(account string) *models.Wallet {
	p.t.Helper()
	w, err := p.srv.Store.WalletOf(context.Background(), account)
	if err != nil {
		p.t.Fatal(err)
	}
	return w
}

func (p *platform) row(account, id string) *models.Request {
	p.t.Helper()
	r, err := p.srv.Store.RequestOf(context.Background(), account, id)
	if err != nil {
		p.t.Fatalf("request %s not in the log of %s: %v", id, account, err)
	}
	return r
}

// calls returns every request of an account that matches f, as its
// Requests pages list them, newest first.
func (p *platform) calls(account string, f models.RequestFilter) []models.Request {
	p.t.Helper()
	return listCalls(p.t, p.srv.Store, account, f)
}

// listCalls is platform.calls for any store.
func listCalls(t testing.TB, s *models.Store, account string, f models.RequestFilter) []models.Request {
	t.Helper()
	var out []models.Request
	for cursor := ""; ; {
		page, err := s.ListRequests(context.Background(), account, f, cursor, 100)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Rows...)
		if cursor = page.Next; cursor == "" {
			return out
		}
	}
}

// notStored fails t unless no request row has the id.
func notStored(t testing.TB, s *models.Store, id, what string) {
	t.Helper()
	if r, err := s.RequestByID(context.Background(), id); models.ErrorCode(err) != models.ENOTFOUND {
		t.Errorf("%s: request %s is in the log (%+v, %v)", what, id, r, err)
	}
}

// callStates counts an account's calls by the state of their hold and by
// billing outcome, as their detail pages show them.
func callStates(t testing.TB, s *models.Store, account string) (holds, outcomes map[string]int) {
	t.Helper()
	holds, outcomes = map[string]int{}, map[string]int{}
	for _, r := range listCalls(t, s, account, models.RequestFilter{}) {
		row, err := s.RequestOf(context.Background(), account, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		holds[row.HoldStatus]++
		outcomes[row.BillingOutcome]++
	}
	return holds, outcomes
}

func (p *platform) invariants(account string) {
	p.t.Helper()
	if err := p.srv.Store.LedgerInvariant(context.Background(), account); err != nil {
		p.t.Fatalf("ledger invariants: %v", err)
	}
	if w := p.wallet(account); w.Available() < 0 {
		p.t.Fatalf("available balance %d < 0", w.Available())
	}
}

// chatHold is the hold of a chat call with chatBody's body: its prompt is
// every byte of the body ("Say hello to the platform." alone, the 7 prompt
// tokens the upstream bills, would miss tools and the like).
func chatHold(t *testing.T, maxTokens int, metadata map[string]string) int64 {
	return chatCost(t, upstream.Tokens(chatBody("tt-chat-small", maxTokens, metadata)), maxTokens)
}

// TestErrorContract has one row per error of the platform's catalogue:
// status, exact body shape and type, headers, the stored row and its
// billing outcome, and the wallet untouched.
func TestErrorContract(t *testing.T) {
	p := newPlatform(t)
	ctx := context.Background()
	store := p.srv.Store
	disabled, disabledSecret := p.newKey(p.account, models.KeyInput{Name: "off"})
	if _, err := store.SetAPIKeyStatus(ctx, p.account, disabled.ID, models.AdminCLI, "disable"); err != nil {
		t.Fatal(err)
	}
	revoked, revokedSecret := p.newKey(p.account, models.KeyInput{Name: "gone"})
	if _, err := store.SetAPIKeyStatus(ctx, p.account, revoked.ID, models.AdminCLI, "revoke"); err != nil {
		t.Fatal(err)
	}
	// A key that expires tomorrow, called two days from now: the same
	// database served by an instance whose clock is ahead.
	_, expiredSecret := p.newKey(p.account, models.KeyInput{Name: "old", ExpiresOn: time.Now().UTC().AddDate(0, 0, 1).Format("2006-01-02")})
	later := &platform{t: t, srv: testenv.NewServerOn(t, p.srv.DB, testenv.Options{Adjust: func(a *handlers.App) {
		a.Clock = func() time.Time { return time.Now().Add(48 * time.Hour) }
	}})}
	_, ipSecret := p.newKey(p.account, models.KeyInput{Name: "office", AllowedIPs: "203.0.113.7"})
	_, scopedSecret := p.newKey(p.account, models.KeyInput{Name: "small only", Models: []string{"tt-chat-small"}})
	_, quotaSecret := p.newKey(p.account, models.KeyInput{Name: "tiny limit", MonthlyLimitUSD: "0.000001"})
	_, slowSecret := p.newKey(p.account, models.KeyInput{Name: "slow", RPM: "1"})
	if r := p.chat(slowSecret, 10, nil); r.res.StatusCode != 200 {
		t.Fatalf("first call on the rpm-1 key: %d %s", r.res.StatusCode, r.body)
	}
	poorAccount, _, poorSecret := p.newAccount("poor@example.com", 0, models.KeyInput{Name: "poor"})

	big := `{"model":"tt-chat-small","messages":[{"role":"user","content":"` + strings.Repeat("x", 1<<20) + `"}]}`
	cases := []struct {
		name, method, path, secret, body string
		status                           int
		typ, msgHas                      string
		account                          string // whose log holds the row; "" = no account: not stored
		rateHeaders                      bool
	}{
		{"unknown path", "POST", "/v1/nope", p.secret, "{}", 404, "not_found", "No route for POST /v1/nope", p.account, false},
		{"doubled /v1", "POST", "/v1/v1/chat/completions", p.secret, "{}", 404, "not_found", "/v1/chat/completions", p.account, false},
		{"body too large", "POST", "/v1/chat/completions", p.secret, big, 413, "request_too_large", "1 MiB", p.account, false},
		{"missing key", "POST", "/v1/chat/completions", "", chatBody("tt-chat-small", 10, nil), 401, "unauthorized", "Missing API key", "", false},
		{"malformed key", "POST", "/v1/chat/completions", "not-a-key", chatBody("tt-chat-small", 10, nil), 401, "unauthorized", "Malformed", "", false},
		{"unknown key", "POST", "/v1/chat/completions", "sk-tt-unknownunknownunknown", chatBody("tt-chat-small", 10, nil), 401, "unauthorized", "Unknown API key", "", false},
		{"disabled key", "POST", "/v1/chat/completions", disabledSecret, chatBody("tt-chat-small", 10, nil), 401, "unauthorized", "disabled", p.account, false},
		{"revoked key", "POST", "/v1/chat/completions", revokedSecret, chatBody("tt-chat-small", 10, nil), 401, "unauthorized", "revoked", p.account, false},
		{"expired key", "POST", "/v1/chat/completions", expiredSecret, chatBody("tt-chat-small", 10, nil), 401, "unauthorized", "expired", p.account, false},
		{"ip not allowed", "POST", "/v1/chat/completions", ipSecret, chatBody("tt-chat-small", 10, nil), 403, "ip_not_allowed", "127.0.0.1", p.account, true},
		{"rate limited", "POST", "/v1/chat/completions", slowSecret, chatBody("tt-chat-small", 10, nil), 429, "rate_limited", "1 request per minute", p.account, true},
		{"malformed JSON", "POST", "/v1/chat/completions", p.secret, `{"model":`, 400, "invalid_request", "not valid JSON", p.account, true},
		{"wrong type", "POST", "/v1/chat/completions", p.secret, `{"model":"tt-chat-small","messages":"hi"}`, 400, "invalid_request", `"messages"`, p.account, true},
		{"missing model", "POST", "/v1/chat/completions", p.secret, `{"messages":[{"role":"user","content":"hi"}]}`, 400, "invalid_request", `"model" is required`, p.account, true},
		{"unknown model", "POST", "/v1/chat/completions", p.secret, chatBody("tt-chat-huge", 10, nil), 400, "invalid_request", `Unknown model "tt-chat-huge"`, p.account, true},
		{"negative max_tokens", "POST", "/v1/chat/completions", p.secret, `{"model":"tt-chat-small","messages":[{"role":"user","content":"hi"}],"max_tokens":-5}`, 400, "invalid_request", `"max_tokens"`, p.account, true},
		{"absurd max_tokens", "POST", "/v1/chat/completions", p.secret, chatBody("tt-chat-small", 10_000_000, nil), 400, "invalid_request", "between 1 and 16384", p.account, true},
		{"fractional max_tokens", "POST", "/v1/chat/completions", p.secret, `{"model":"tt-chat-small","messages":[{"role":"user","content":"hi"}],"max_tokens":16.5}`, 400, "invalid_request", `The field "max_tokens" must be a whole number, not number 16.5.`, p.account, true},
		{"null embeddings input", "POST", "/v1/embeddings", p.secret, `{"model":"tt-embed-1","input":null}`, 400, "invalid_request", `The field "input" is required`, p.account, true},
		{"model not allowed", "POST", "/v1/chat/completions", scopedSecret, chatBody("tt-chat-large", 10, nil), 403, "model_not_allowed", `"tt-chat-large" is not in the scope of the API key "small only", which allows: tt-chat-small`, p.account, true},
		{"quota exceeded", "POST", "/v1/chat/completions", quotaSecret, chatBody("tt-chat-small", 10, nil), 402, "api_key_quota_exceeded", "monthly limit is $0.000001", p.account, true},
		{"billing shortfall", "POST", "/v1/chat/completions", poorSecret, chatBody("tt-chat-small", 10, nil), 402, "billing_shortfall", "recharge at least " + models.FormatUSDs(chatHold(t, 10, nil), 0)[0], poorAccount, true},
		{"upstream error", "POST", "/v1/chat/completions", p.secret, chatBody("tt-chat-small", 10, map[string]string{"sim_status": "500"}), 502, "upstream_error", "answered 500", p.account, true},
		{"upstream unavailable", "POST", "/v1/chat/completions", p.secret, chatBody("tt-chat-small", 10, map[string]string{"sim_status": "503"}), 503, "service_unavailable", "temporarily unavailable", p.account, true},
		{"upstream timeout", "POST", "/v1/chat/completions", p.secret, chatBody("tt-chat-small", 10, map[string]string{"sim_status": "504"}), 504, "upstream_timeout", "timed out", p.account, true},
	}
	before := p.wallet(p.account)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			via := p
			if tc.secret == expiredSecret {
				via = later // two days from now
			}
			r := via.do(tc.method, tc.path, tc.secret, tc.body)
			if r.res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", r.res.StatusCode, tc.status, r.body)
			}
			typ, msg := errorOf(t, r)
			if typ != tc.typ || !strings.Contains(msg, tc.msgHas) {
				t.Fatalf("error %s %q, want %s containing %q", typ, msg, tc.typ, tc.msgHas)
			}
			if !strings.HasPrefix(r.id(), "req_") {
				t.Fatal("no X-TT-Request-ID")
			}
			h := r.res.Header
			if got := h.Get("X-RateLimit-Limit") != ""; got != tc.rateHeaders {
				t.Fatalf("rate-limit headers present = %v, want %v", got, tc.rateHeaders)
			}
			if tc.rateHeaders && (h.Get("X-RateLimit-Remaining") == "" || h.Get("X-RateLimit-Reset") == "") {
				t.Fatal("incomplete rate-limit headers")
			}
			if tc.status == 429 {
				retry, err := strconv.Atoi(h.Get("Retry-After"))
				reset, _ := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64)
				if err != nil || retry < 1 || retry > 60 || reset < time.Now().Unix()+int64(retry)-1 {
					t.Fatalf("Retry-After %q, Reset %d: want whole seconds >= 1, consistent with Reset", h.Get("Retry-After"), reset)
				}
				// Looked up by its id, the call shows the headers it was answered with.
				got := p.do("GET", "/v1/requests/"+r.id(), p.secret, "")
				var detail struct {
					RateLimit map[string]int64 `json:"rate_limit"`
				}
				if err := json.Unmarshal([]byte(got.body), &detail); err != nil {
					t.Fatalf("GET /v1/requests/%s: %v: %s", r.id(), err, got.body)
				}
				want := map[string]int64{"limit": 1, "remaining": 0, "reset": reset, "retry_after": int64(retry)}
				if !maps.Equal(detail.RateLimit, want) {
					t.Fatalf("rate_limit of the 429 looked up by id: %v, want %v", detail.RateLimit, want)
				}
			}
			row, err := p.srv.Store.RequestByID(ctx, r.id())
			if tc.account == "" {
				if models.ErrorCode(err) != models.ENOTFOUND {
					t.Fatalf("a call no key identifies was stored (%v)", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("no request row for %s: %v", r.id(), err)
			}
			gotAccount := ""
			if row.AccountID != nil {
				gotAccount = *row.AccountID
			}
			if row.Status != tc.status || row.ErrorType != tc.typ || gotAccount != tc.account || row.ErrorBody != strings.TrimSpace(r.body) {
				t.Fatalf("row: status %d type %s account %q body %q", row.Status, row.ErrorType, gotAccount, row.ErrorBody)
			}
			wantOutcome := models.OutcomeNotChargedRejected
			if tc.status >= 500 {
				wantOutcome = models.OutcomeNotChargedFailed
			}
			if row.BillingOutcome != wantOutcome || row.ChargedMicros != 0 {
				t.Fatalf("outcome %s charged %d, want %s and nothing", row.BillingOutcome, row.ChargedMicros, wantOutcome)
			}
			if tc.status >= 500 {
				evs, _ := p.srv.Store.Timeline(ctx, r.id())
				if len(evs) != 2 || evs[0].Event != "hold_placed" || evs[1].Event != "released" || evs[1].AmountMicros != evs[0].AmountMicros {
					t.Fatalf("timeline of a failed call: %+v", evs)
				}
			} else if row.HoldMicros != 0 {
				t.Fatalf("a rejected call held %d", row.HoldMicros)
			}
		})
	}
	after := p.wallet(p.account)
	// Only the one successful call on the slow key moved money.
	var charged int64
	for _, r := range p.calls(p.account, models.RequestFilter{}) {
		charged += r.ChargedMicros
	}
	if after.HeldMicros != 0 || after.BalanceMicros != before.BalanceMicros || before.BalanceMicros+charged != 10*models.MicrosPerUSD {
		t.Fatalf("wallet moved: before %+v after %+v", before, after)
	}
	p.invariants(p.account)
	p.invariants(poorAccount)
}

func TestChatChargesRealUsage(t *testing.T) {
	p := newPlatform(t)
	r := p.chat(p.secret, 100, map[string]string{"sim_output_tokens": "40"})
	if r.res.StatusCode != 200 {
		t.Fatalf("chat: %d %s", r.res.StatusCode, r.body)
	}
	var out struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal([]byte(r.body), &out); err != nil || len(out.Choices) != 1 {
		t.Fatalf("answer %s", r.body)
	}
	if out.Usage.PromptTokens != 7 || out.Usage.CompletionTokens != 40 || len(out.Choices[0].Message.Content) != 160 {
		t.Fatalf("usage %+v, content %d bytes", out.Usage, len(out.Choices[0].Message.Content))
	}
	for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
		if r.res.Header.Get(h) == "" {
			t.Errorf("success lacks %s", h)
		}
	}
	wantCost := chatCost(t, 7, 40) // 7 tokens in and 40 out, rounded up once
	if wantCost != 64 {
		t.Fatalf("cost arithmetic: %d", wantCost)
	}
	row := p.row(p.account, r.id())
	if row.ChargedMicros != wantCost || row.HoldMicros != chatHold(t, 100, map[string]string{"sim_output_tokens": "40"}) || row.ChargedMicros > row.HoldMicros ||
		row.BillingOutcome != models.OutcomeCharged || row.PromptTokens != 7 || row.CompletionTokens != 40 {
		t.Fatalf("row: %+v", row)
	}
	w := p.wallet(p.account)
	if w.BalanceMicros != 10*models.MicrosPerUSD-wantCost || w.HeldMicros != 0 {
		t.Fatalf("wallet %+v", w)
	}
	p.invariants(p.account)

	// The self-service endpoint shows what was stored.
	got := p.do("GET", "/v1/requests/"+r.id(), p.secret, "")
	var js map[string]any
	if err := json.Unmarshal([]byte(got.body), &js); err != nil || got.res.StatusCode != 200 {
		t.Fatalf("GET /v1/requests: %d %s", got.res.StatusCode, got.body)
	}
	if js["id"] != r.id() || js["charged_micros"] != float64(wantCost) || js["billing_outcome"] != "charged" ||
		js["hold_micros"] != float64(row.HoldMicros) || js["error"] != nil || js["model"] != "tt-chat-small" {
		t.Fatalf("request JSON %s", got.body)
	}
	tl := js["timeline"].([]any)
	if len(tl) != 3 || tl[0].(map[string]any)["event"] != "hold_placed" || tl[1].(map[string]any)["event"] != "captured" ||
		tl[1].(map[string]any)["amount_micros"] != float64(wantCost) {
		t.Fatalf("timeline %v", tl)
	}
	key := js["key"].(map[string]any)
	if key["id"] != p.key.ID || key["name"] != "default" {
		t.Fatalf("key %v", key)
	}

	// Another account cannot see it.
	_, _, otherSecret := p.newAccount("other@example.com", models.MicrosPerUSD, models.KeyInput{Name: "x"})
	other := p.do("GET", "/v1/requests/"+r.id(), otherSecret, "")
	if typ, _ := errorOf(t, other); other.res.StatusCode != 404 || typ != "not_found" {
		t.Fatalf("another account's request: %d %s", other.res.StatusCode, other.body)
	}

	acct := p.do("GET", "/v1/account", p.secret, "")
	var a struct {
		Balance   int64 `json:"balance_micros"`
		Held      int64 `json:"held_micros"`
		Available int64 `json:"available_micros"`
		Key       struct {
			ID          string `json:"id"`
			MonthToDate int64  `json:"month_to_date_micros"`
			RPM         int    `json:"rpm"`
		} `json:"key"`
	}
	if err := json.Unmarshal([]byte(acct.body), &a); err != nil {
		t.Fatal(err)
	}
	if a.Balance != w.BalanceMicros || a.Available != w.BalanceMicros || a.Key.ID != p.key.ID || a.Key.MonthToDate != wantCost || a.Key.RPM != 600 {
		t.Fatalf("account %s", acct.body)
	}
}

func TestEmbeddingsAndModels(t *testing.T) {
	p := newPlatform(t)
	r := p.do("POST", "/v1/embeddings", p.secret, `{"model":"tt-embed-1","input":["abcdefgh","abcd"]}`)
	if r.res.StatusCode != 200 {
		t.Fatalf("embeddings: %d %s", r.res.StatusCode, r.body)
	}
	row := p.row(p.account, r.id())
	if row.PromptTokens != 3 || row.ChargedMicros != 1 || row.BillingOutcome != models.OutcomeCharged {
		t.Fatalf("row %+v", row) // 3 tokens × $0.10/M = 0.3 µ$ → rounded up to 1
	}
	bad := p.do("POST", "/v1/embeddings", p.secret, `{"model":"tt-chat-small","input":"x"}`)
	if typ, msg := errorOf(t, bad); bad.res.StatusCode != 400 || typ != "invalid_request" || !strings.Contains(msg, "chat model") {
		t.Fatalf("chat model on embeddings: %d %s", bad.res.StatusCode, bad.body)
	}
	ms := p.do("GET", "/v1/models", p.secret, "")
	catalogue, err := p.srv.Store.Models(context.Background())
	if err != nil || len(catalogue) == 0 {
		t.Fatalf("the catalogue: %d models, %v", len(catalogue), err)
	}
	for _, m := range catalogue {
		if !strings.Contains(ms.body, `"id":"`+m.ID+`"`) {
			t.Errorf("/v1/models lacks %s: %s", m.ID, ms.body)
		}
	}
	p.invariants(p.account)
}

func TestTrustedProxies(t *testing.T) {
	cases := []struct {
		name, proxies string
		headers       []string
		wantIP        string
	}{
		{"no proxy configured ignores X-Forwarded-For", "", []string{"X-Forwarded-For", "198.51.100.7"}, "127.0.0.1"},
		{"no proxy configured ignores X-Real-IP", "", []string{"X-Real-IP", "198.51.100.7"}, "127.0.0.1"},
		{"untrusted peer cannot spoof", "10.0.0.0/8", []string{"X-Forwarded-For", "198.51.100.7"}, "127.0.0.1"},
		{"trusted proxy's X-Forwarded-For", "127.0.0.1", []string{"X-Forwarded-For", "198.51.100.7"}, "198.51.100.7"},
		{"right-most untrusted address", "127.0.0.0/8", []string{"X-Forwarded-For", "198.51.100.7, 203.0.113.9"}, "203.0.113.9"},
		{"chain of trusted proxies", "127.0.0.0/8,203.0.113.0/24", []string{"X-Forwarded-For", "198.51.100.7, 203.0.113.9"}, "198.51.100.7"},
		{"trusted proxy's X-Real-IP", "127.0.0.1/32", []string{"X-Real-IP", "198.51.100.7"}, "198.51.100.7"},
		{"garbage header from trusted proxy", "127.0.0.1", []string{"X-Forwarded-For", "not-an-ip"}, "127.0.0.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var cfg testenv.Options
			for _, s := range strings.Split(tc.proxies, ",") {
				if s == "" {
					continue
				}
				pfx, err := parsePrefix(s)
				if err != nil {
					t.Fatal(err)
				}
				cfg.Config.TrustedProxies = append(cfg.Config.TrustedProxies, pfx)
			}
			p := newPlatform(t, cfg)
			_, onlySecret := p.newKey(p.account, models.KeyInput{Name: "office", AllowedIPs: "198.51.100.7"})
			r := p.do("GET", "/v1/account", onlySecret, "", tc.headers...)
			row := p.row(p.account, r.id())
			if row.ClientIP != tc.wantIP {
				t.Fatalf("client IP %q, want %q", row.ClientIP, tc.wantIP)
			}
			wantStatus := 403
			if tc.wantIP == "198.51.100.7" {
				wantStatus = 200
			}
			if r.res.StatusCode != wantStatus {
				t.Fatalf("status %d, want %d: %s", r.res.StatusCode, wantStatus, r.body)
			}
		})
	}
}

// TestConcurrentHoldsNeverOverdraw funds a wallet for exactly n holds and
// sends 4n overlapping calls: at most n run, the rest are refused.
func TestConcurrentHoldsNeverOverdraw(t *testing.T) {
	const n = 5
	slow := map[string]string{"sim_delay_ms": "1500", "sim_output_tokens": "1000"}
	hold := chatHold(t, 1000, slow)
	for _, limitByKey := range []bool{false, true} {
		t.Run(map[bool]string{false: "wallet", true: "key monthly limit"}[limitByKey], func(t *testing.T) {
			p := newPlatform(t)
			account, secret, wantType := p.account, "", "billing_shortfall"
			if limitByKey {
				_, k, s := p.newAccount("limited@example.com", 10*models.MicrosPerUSD,
					models.KeyInput{Name: "limited", RPM: "600", MonthlyLimitUSD: models.LimitInput(new(n * hold))})
				account, secret, wantType = k.AccountID, s, "api_key_quota_exceeded"
			} else {
				var s string
				account, _, s = p.newAccount("exact@example.com", n*hold, models.KeyInput{Name: "exact", RPM: "600"})
				secret = s
			}
			results := make(chan apiResult, 4*n)
			for i := 0; i < 4*n; i++ {
				go func() {
					results <- p.chat(secret, 1000, slow)
				}()
			}
			ok, refused := 0, 0
			for i := 0; i < 4*n; i++ {
				r := <-results
				switch r.res.StatusCode {
				case 200:
					ok++
				case 402:
					if typ, _ := errorOf(t, r); typ != wantType {
						t.Errorf("402 of type %s, want %s", typ, wantType)
					}
					refused++
				default:
					t.Errorf("unexpected %d %s", r.res.StatusCode, r.body)
				}
			}
			if ok != n || refused != 3*n {
				t.Fatalf("%d accepted and %d refused, want %d and %d", ok, refused, n, 3*n)
			}
			w := p.wallet(account)
			if w.BalanceMicros < 0 || w.HeldMicros != 0 {
				t.Fatalf("wallet after: %+v", w)
			}
			p.invariants(account)
		})
	}
}

// TestLedgerInvariantsAfterAMix runs a random mix of calls and checks the
// ledger's invariants.
func TestLedgerInvariantsAfterAMix(t *testing.T) {
	p := newPlatform(t)
	_, poorKey, poorSecret := p.newAccount("poor@example.com", 200, models.KeyInput{Name: "poor", RPM: "600"})
	mix := []func(i int) apiResult{
		func(i int) apiResult {
			return p.chat(p.secret, 50, map[string]string{"sim_output_tokens": strconv.Itoa(i % 50)})
		},
		func(i int) apiResult { return p.chat(p.secret, 50, map[string]string{"sim_status": "500"}) },
		func(i int) apiResult { return p.chat(poorSecret, 50, nil) },
		func(i int) apiResult {
			return p.do("POST", "/v1/embeddings", p.secret, fmt.Sprintf(`{"model":"tt-embed-1","input":"%s"}`, strings.Repeat("a", i)))
		},
		func(i int) apiResult { return p.do("POST", "/v1/chat/completions", p.secret, `{"model":1}`) },
	}
	done := make(chan struct{})
	for i := 0; i < 60; i++ {
		go func() {
			mix[i%len(mix)](i)
			done <- struct{}{}
		}()
	}
	for i := 0; i < 60; i++ {
		<-done
	}
	p.invariants(p.account)
	p.invariants(poorKey.AccountID)
	for _, acct := range []string{p.account, poorKey.AccountID} {
		if holds, outcomes := callStates(t, p.srv.Store, acct); holds[models.HoldOpen] != 0 || outcomes[models.OutcomePending] != 0 {
			t.Fatalf("%d holds still open, %d calls pending", holds[models.HoldOpen], outcomes[models.OutcomePending])
		}
	}
}
