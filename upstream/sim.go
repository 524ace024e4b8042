package upstream

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Simulator is an OpenAI-compatible model server for development, tests and
// benchmarks. Its behaviour follows the request's metadata directives:
// sim_output_tokens, sim_status, sim_delay_ms, sim_interval_ms, sim_cut_after.
type Simulator struct {
	mux *http.ServeMux
}

// NewSimulator returns a simulator ready to serve.
func NewSimulator() *Simulator {
	s := &Simulator{mux: http.NewServeMux()}
	s.mux.HandleFunc("POST /v1/chat/completions", s.chat)
	s.mux.HandleFunc("POST /v1/embeddings", s.embeddings)
	s.registerTasks()
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	return s
}

func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// ChatRequest is the part of an OpenAI chat request the platform reads.
type ChatRequest struct {
	Model     string        `json:"model"`
	Messages  []ChatMessage `json:"messages"`
	MaxTokens *int          `json:"max_tokens,omitempty"`
	// An upstream may honour either name of the output budget.
	MaxCompletionTokens *int              `json:"max_completion_tokens,omitempty"`
	N                   *int              `json:"n,omitempty"` // completions, each up to the budget
	Stream              bool              `json:"stream,omitempty"`
	StreamOptions       *StreamOptions    `json:"stream_options,omitempty"`
	Metadata            map[string]string `json:"metadata,omitempty"`
}

// StreamOptions asks for a final usage chunk in a stream.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// ChatMessage is one message of a chat.
type ChatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Usage is the token count of a call.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// OutputBudget is the most tokens each completion may have, when the
// request sets it under either name.
func (r *ChatRequest) OutputBudget() *int {
	if r.MaxTokens != nil {
		return r.MaxTokens
	}
	return r.MaxCompletionTokens
}

// Choices is how many completions the request asks for.
func (r *ChatRequest) Choices() int {
	if r.N == nil || *r.N < 1 {
		return 1
	}
	return *r.N
}

// PromptText is the text of every message, the part counted as prompt tokens.
func (r *ChatRequest) PromptText() string {
	var b strings.Builder
	for _, m := range r.Messages {
		b.WriteString(m.Content)
	}
	return b.String()
}

// PromptTokens counts the prompt the way the platform bills it.
func (r *ChatRequest) PromptTokens() int {
	n := 0
	for _, m := range r.Messages {
		n += len(m.Content)
	}
	return (n + 3) / 4
}

type directives struct {
	outputTokens int
	status       int
	delay        time.Duration
	interval     time.Duration
	cutAfter     int
}

func readDirectives(md map[string]string, maxTokens *int) directives {
	d := directives{outputTokens: 16}
	num := func(name string) (int, bool) {
		v, ok := md[name]
		if !ok {
			return 0, false
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		return n, err == nil && n >= 0
	}
	if n, ok := num("sim_output_tokens"); ok {
		d.outputTokens = n
	}
	if maxTokens != nil && d.outputTokens > *maxTokens {
		d.outputTokens = *maxTokens
	}
	if n, ok := num("sim_status"); ok && n >= 100 && n <= 599 {
		d.status = n
	}
	if n, ok := num("sim_delay_ms"); ok {
		d.delay = time.Duration(min(n, 600_000)) * time.Millisecond
	}
	if n, ok := num("sim_interval_ms"); ok {
		d.interval = time.Duration(min(n, 60_000)) * time.Millisecond
	}
	d.cutAfter = -1
	if n, ok := num("sim_cut_after"); ok {
		d.cutAfter = n
	}
	return d
}

// words are four bytes each, so n tokens of output are exactly 4n bytes.
var words = []string{"the ", "cat ", "sat ", "on  ", "mat ", "and ", "saw ", "sun ", "set ", "low ", "red ", "sky "}

// word returns the i-th token of the deterministic answer to a prompt.
func word(seed uint32, i int) string { return words[(int(seed)+i*7)%len(words)] }

func seedOf(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func simError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": "simulated_error", "code": status}})
}

// sleep waits d or until the client goes away, and reports whether to go on.
func sleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func (s *Simulator) chat(w http.ResponseWriter, r *http.Request) {
	var req ChatRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		simError(w, http.StatusBadRequest, "bad JSON: "+err.Error())
		return
	}
	d := readDirectives(req.Metadata, req.OutputBudget())
	if !sleep(r, d.delay) {
		return
	}
	if d.status != 0 && d.status != http.StatusOK {
		simError(w, d.status, fmt.Sprintf("simulated upstream status %d", d.status))
		return
	}
	seed := seedOf(req.PromptText())
	n := min(req.Choices(), 128)
	usage := Usage{PromptTokens: req.PromptTokens(), CompletionTokens: n * d.outputTokens}
	usage.TotalTokens = usage.PromptTokens + usage.CompletionTokens
	id := fmt.Sprintf("chatcmpl-sim%08x", seed)
	if req.Stream {
		s.stream(w, r, &req, d, seed, n, id, usage)
		return
	}
	choices := make([]any, n)
	for c := range choices {
		var text strings.Builder
		for i := 0; i < d.outputTokens; i++ {
			text.WriteString(word(seed+uint32(c), i))
		}
		choices[c] = map[string]any{
			"index": c, "message": ChatMessage{Role: "assistant", Content: text.String()}, "finish_reason": "stop",
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": id, "object": "chat.completion", "created": time.Now().Unix(), "model": req.Model,
		"choices": choices, "usage": usage,
	})
}

// stream answers with one SSE chunk per token of each of the n choices,
// then a usage chunk when asked for, then [DONE]. sim_cut_after breaks the
// connection after N tokens, as a failing upstream would.
func (s *Simulator) stream(w http.ResponseWriter, r *http.Request, req *ChatRequest, d directives, seed uint32, n int, id string, usage Usage) {
	fl, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	send := func(v any) bool {
		b, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return false
		}
		if fl != nil {
			fl.Flush()
		}
		return true
	}
	created := time.Now().Unix()
	for i := 0; i < d.outputTokens; i++ {
		if d.cutAfter >= 0 && i >= d.cutAfter {
			panic(http.ErrAbortHandler) // drop the connection mid-stream
		}
		if i > 0 && !sleep(r, d.interval) {
			return
		}
		for c := 0; c < n; c++ {
			if !send(map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": req.Model,
				"choices": []any{map[string]any{"index": c, "delta": map[string]string{"content": word(seed+uint32(c), i)}, "finish_reason": nil}}}) {
				return
			}
		}
	}
	if d.cutAfter == d.outputTokens {
		panic(http.ErrAbortHandler) // every token sent, but never the end of the stream
	}
	for c := 0; c < n; c++ {
		send(map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": req.Model,
			"choices": []any{map[string]any{"index": c, "delta": map[string]string{}, "finish_reason": "stop"}}})
	}
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		send(map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": req.Model,
			"choices": []any{}, "usage": usage})
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	if fl != nil {
		fl.Flush()
	}
}

// EmbeddingsRequest is the part of an OpenAI embeddings request the platform reads.
type EmbeddingsRequest struct {
	Model    string            `json:"model"`
	Input    json.RawMessage   `json:"input"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Inputs returns the texts to embed: a string or a list of strings.
func (r *EmbeddingsRequest) Inputs() ([]string, error) {
	var one string
	if err := json.Unmarshal(r.Input, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(r.Input, &many); err != nil {
		return nil, fmt.Errorf("input must be a string or a list of strings")
	}
	return many, nil
}

func (s *Simulator) embeddings(w http.ResponseWriter, r *http.Request) {
	var req EmbeddingsRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		simError(w, http.StatusBadRequest, "bad JSON: "+err.Error())
		return
	}
	d := readDirectives(req.Metadata, nil)
	if !sleep(r, d.delay) {
		return
	}
	if d.status != 0 && d.status != http.StatusOK {
		simError(w, d.status, fmt.Sprintf("simulated upstream status %d", d.status))
		return
	}
	inputs, err := req.Inputs()
	if err != nil {
		simError(w, http.StatusBadRequest, err.Error())
		return
	}
	data := make([]any, len(inputs))
	tokens := 0
	for i, in := range inputs {
		tokens += Tokens(in)
		seed := seedOf(in)
		vec := make([]float64, 8)
		for j := range vec {
			vec[j] = float64(int(seed>>(j*4))&0xf-8) / 8
		}
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": vec}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list", "data": data, "model": req.Model,
		"usage": map[string]int{"prompt_tokens": tokens, "total_tokens": tokens},
	})
}
