package handlers

import (
	"net/http"
	"testing"
)

// FuzzParseChatRequest feeds arbitrary bodies to the chat parameter
// parser: it must never panic, and every refusal is a 400 invalid_request
// whose message a customer can act on.
func FuzzParseChatRequest(f *testing.F) {
	for _, seed := range []string{
		`{"model":"tt-chat-small","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"tt-chat-small","messages":[{"role":"user","content":"hi"}],"max_tokens":16,"stream":true}`,
		`{"model":"tt-chat-small","messages":[{"role":"robot","content":"hi"}]}`,
		`{"model":"tt-chat-small","messages":[],"max_tokens":-1}`,
		`{"model":1,"messages":"x"}`,
		`{"model":"tt-chat-small","messages":[{"role":"user","content":"hi"}],"metadata":{"sim_status":5}}`,
		`{"model":"tt-chat-small","max_tokens":1e400}`,
		`{"model":"a"}{"model":"b"}`,
		`[1,2,3]`, `null`, `"text"`, ``, `{`, "\x00\xff",
		`{"model":"tt-chat-small","messages":[{"role":"user","content":"\ud800"}]}`,
		`{"model":"tt-chat-small","messages":[{"role":"user","content":"hi","Content":"x"}],"max_tokens":2,"MAX_TOKENS":1}`,
		`{"model":"tt-chat-small","model":"tt-chat-large","messages":[{"role":"user","content":"hi"}],"n":8}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseChatRequest(body)
		if err != nil {
			if err.Status != http.StatusBadRequest || err.Type != "invalid_request" || err.Message == "" {
				t.Fatalf("refusal %+v, want a 400 invalid_request with a message", err)
			}
			return
		}
		if req.Model == "" || len(req.Messages) == 0 || req.MaxTokens != nil && *req.MaxTokens < 1 ||
			req.N != nil && (*req.N < 1 || *req.N > 128) {
			t.Fatalf("accepted an invalid request: %+v", req)
		}
	})
}
