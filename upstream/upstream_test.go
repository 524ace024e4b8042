package upstream

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// clients returns the two ways the gateway reaches the simulator: over
// loopback HTTP (as with UPSTREAM_URL or `ttconsole upstream-sim`) and in
// process (the default).
func clients(t *testing.T) map[string]*Client {
	t.Helper()
	sim := NewSimulator()
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return map[string]*Client{
		"http":       NewHTTP(srv.URL, 10*time.Second),
		"in-process": NewInProcess(sim, 10*time.Second),
	}
}

func post(t *testing.T, c *Client, ctx context.Context, path, body string) (*http.Response, []byte) {
	t.Helper()
	res, err := c.Post(ctx, path, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

func TestSimulatorChat(t *testing.T) {
	for name, c := range clients(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			// 13 bytes of prompt are 4 tokens; the answer has sim_output_tokens
			// tokens of 4 bytes each, never more than max_tokens.
			body := `{"model":"m","max_tokens":%d,"messages":[{"role":"user","content":"Hello, world!"}],"metadata":{"sim_output_tokens":"10"}}`
			for _, tc := range []struct{ maxTokens, want int }{{50, 10}, {3, 3}} {
				res, b := post(t, c, ctx, "/v1/chat/completions", strings.Replace(body, "%d", itoa(tc.maxTokens), 1))
				if res.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", res.StatusCode, b)
				}
				var out struct {
					Choices []struct {
						Message ChatMessage `json:"message"`
					} `json:"choices"`
					Usage Usage `json:"usage"`
				}
				if err := json.Unmarshal(b, &out); err != nil {
					t.Fatal(err)
				}
				if out.Usage.PromptTokens != 4 || out.Usage.CompletionTokens != tc.want || out.Usage.TotalTokens != 4+tc.want {
					t.Fatalf("max_tokens %d: usage %+v", tc.maxTokens, out.Usage)
				}
				if len(out.Choices) != 1 || len(out.Choices[0].Message.Content) != 4*tc.want {
					t.Fatalf("max_tokens %d: answer %+v", tc.maxTokens, out.Choices)
				}
			}
			// The same prompt gets the same answer.
			_, a := post(t, c, ctx, "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"same"}]}`)
			_, b := post(t, c, ctx, "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"same"}]}`)
			if content(t, a) != content(t, b) {
				t.Fatal("the simulator's answer to one prompt changed")
			}
		})
	}
}

// TestSimulatorHonoursN: n completions, each up to max_tokens, and usage
// for all of them, streamed or not.
func TestSimulatorHonoursN(t *testing.T) {
	for name, c := range clients(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			body := `{"model":"m","n":3,"max_completion_tokens":4,"messages":[{"role":"user","content":"abcd"}],"metadata":{"sim_output_tokens":"10"}%s}`
			res, b := post(t, c, ctx, "/v1/chat/completions", strings.Replace(body, "%s", "", 1))
			var out struct {
				Choices []struct {
					Index   int         `json:"index"`
					Message ChatMessage `json:"message"`
				} `json:"choices"`
				Usage Usage `json:"usage"`
			}
			if err := json.Unmarshal(b, &out); err != nil || res.StatusCode != http.StatusOK {
				t.Fatalf("%d %s: %v", res.StatusCode, b, err)
			}
			if len(out.Choices) != 3 || out.Choices[2].Index != 2 || len(out.Choices[2].Message.Content) != 16 ||
				out.Usage.CompletionTokens != 12 || out.Usage.TotalTokens != 13 {
				t.Fatalf("n=3: %s", b)
			}
			res, err := c.Post(ctx, "/v1/chat/completions", []byte(strings.Replace(body, "%s", `,"stream":true,"stream_options":{"include_usage":true}`, 1)))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			lines, err := sse(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			// 4 tokens × 3 choices, 3 finish chunks, usage, [DONE].
			if len(lines) != 12+3+2 || !strings.Contains(lines[15], `"completion_tokens":12`) || lines[16] != "[DONE]" {
				t.Fatalf("n=3 stream: %q", lines)
			}
		})
	}
}

func content(t *testing.T, b []byte) string {
	t.Helper()
	var out struct {
		Choices []struct {
			Message ChatMessage `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(b, &out); err != nil || len(out.Choices) != 1 {
		t.Fatalf("answer %s: %v", b, err)
	}
	return out.Choices[0].Message.Content
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestSimulatorFailures(t *testing.T) {
	for name, c := range clients(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			res, b := post(t, c, ctx, "/v1/chat/completions",
				`{"model":"m","messages":[{"role":"user","content":"x"}],"metadata":{"sim_status":"503"}}`)
			if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), `"simulated_error"`) {
				t.Fatalf("sim_status 503: %d %s", res.StatusCode, b)
			}
			res, b = post(t, c, ctx, "/v1/chat/completions", `{"model":`)
			if res.StatusCode != http.StatusBadRequest {
				t.Fatalf("bad JSON: %d %s", res.StatusCode, b)
			}

			// A delay longer than the caller waits ends in a timeout, soon.
			tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := c.Post(tctx, "/v1/chat/completions",
				[]byte(`{"model":"m","messages":[{"role":"user","content":"x"}],"metadata":{"sim_delay_ms":"5000"}}`))
			if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
				t.Fatalf("sim_delay_ms past the deadline: %v after %s", err, time.Since(start))
			}
		})
	}
}

// sse reads a stream's data lines until it ends, and how it ended.
func sse(body io.Reader) (lines []string, err error) {
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		if l, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			lines = append(lines, l)
		}
	}
	return lines, sc.Err()
}

func TestSimulatorStreams(t *testing.T) {
	for name, c := range clients(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			stream := func(extra string) []string {
				res, err := c.Post(ctx, "/v1/chat/completions", []byte(`{"model":"m","stream":true,`+extra+
					`"messages":[{"role":"user","content":"abcd"}],"metadata":{"sim_output_tokens":"5"}}`))
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
					t.Fatalf("stream answered %d %q", res.StatusCode, res.Header.Get("Content-Type"))
				}
				lines, err := sse(res.Body)
				if err != nil {
					t.Fatal(err)
				}
				return lines
			}
			// 5 token chunks, the finish chunk, [DONE]; usage only when asked for.
			lines := stream("")
			if len(lines) != 7 || lines[6] != "[DONE]" || strings.Contains(strings.Join(lines, ""), `"usage"`) {
				t.Fatalf("stream without usage: %q", lines)
			}
			lines = stream(`"stream_options":{"include_usage":true},`)
			if len(lines) != 8 || lines[7] != "[DONE]" {
				t.Fatalf("stream with usage: %q", lines)
			}
			var last struct {
				Usage Usage `json:"usage"`
			}
			if err := json.Unmarshal([]byte(lines[6]), &last); err != nil || last.Usage.PromptTokens != 1 || last.Usage.CompletionTokens != 5 {
				t.Fatalf("usage chunk %s: %v", lines[6], err)
			}
		})
	}
}

func TestSimulatorStreamCutOff(t *testing.T) {
	for name, c := range clients(t) {
		t.Run(name, func(t *testing.T) {
			res, err := c.Post(context.Background(), "/v1/chat/completions", []byte(`{"model":"m","stream":true,`+
				`"messages":[{"role":"user","content":"abcd"}],"metadata":{"sim_output_tokens":"8","sim_cut_after":"3"}}`))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			lines, _ := sse(res.Body) // ends with an error or a bare EOF: never [DONE]
			if len(lines) != 3 {
				t.Fatalf("a stream cut after 3 tokens gave %d chunks: %q", len(lines), lines)
			}
		})
	}
}

func TestStreamCancelStopsTheUpstream(t *testing.T) {
	for name, c := range clients(t) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			res, err := c.Post(ctx, "/v1/chat/completions", []byte(`{"model":"m","stream":true,`+
				`"messages":[{"role":"user","content":"abcd"}],"metadata":{"sim_output_tokens":"1000","sim_interval_ms":"50"}}`))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			br := bufio.NewReader(res.Body)
			if _, err := br.ReadString('\n'); err != nil {
				t.Fatal(err)
			}
			cancel()
			done := make(chan error, 1)
			go func() {
				_, err := io.Copy(io.Discard, br)
				done <- err
			}()
			select {
			case <-done: // the body ends instead of running its 50 s
			case <-time.After(2 * time.Second):
				t.Fatal("a cancelled stream kept going")
			}
		})
	}
}

func TestSimulatorEmbeddingsAndTasks(t *testing.T) {
	for name, c := range clients(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			for body, want := range map[string]int{
				`{"model":"e","input":"abcdefgh"}`:           2,
				`{"model":"e","input":["abcd","abcdefghi"]}`: 4,
			} {
				res, b := post(t, c, ctx, "/v1/embeddings", body)
				var out struct {
					Data  []json.RawMessage `json:"data"`
					Usage Usage             `json:"usage"`
				}
				if res.StatusCode != http.StatusOK || json.Unmarshal(b, &out) != nil || out.Usage.PromptTokens != want {
					t.Fatalf("%s: %d %s", body, res.StatusCode, b)
				}
			}
			if res, b := post(t, c, ctx, "/v1/embeddings", `{"model":"e","input":42}`); res.StatusCode != http.StatusBadRequest {
				t.Fatalf("numeric input: %d %s", res.StatusCode, b)
			}

			// A task's id carries its end: running, then succeeded; cancel
			// of a running task says cancelled.
			res, b := post(t, c, ctx, "/v1/tasks", `{"model":"t","input":"x","metadata":{"sim_duration_ms":"150"}}`)
			var st TaskStatus
			if res.StatusCode != http.StatusAccepted || json.Unmarshal(b, &st) != nil || st.Status != "running" {
				t.Fatalf("create task: %d %s", res.StatusCode, b)
			}
			if _, b := post(t, c, ctx, "/v1/tasks/"+st.ID+"/cancel", `{}`); !strings.Contains(string(b), `"cancelled"`) {
				t.Fatalf("cancel of a running task: %s", b)
			}
			time.Sleep(200 * time.Millisecond)
			res, err := c.Get(ctx, "/v1/tasks/"+st.ID)
			if err != nil {
				t.Fatal(err)
			}
			b, _ = io.ReadAll(res.Body)
			res.Body.Close()
			if !strings.Contains(string(b), `"succeeded"`) || !strings.Contains(string(b), `"result"`) {
				t.Fatalf("task after its time: %s", b)
			}
			res, err = c.Get(ctx, "/v1/tasks/simtask_nope")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusNotFound {
				t.Fatalf("unknown task: %d", res.StatusCode)
			}
		})
	}
}
