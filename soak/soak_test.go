// Package soak runs TT as two real `ttconsole serve` processes on one
// PostgreSQL and one Redis, behind a round-robin client, with a simulated
// upstream that is slow on 5% and fails on 2% of calls, for a while; then
// it drains and checks what a long run must not break. It is a benchmark,
// never part of CI:
//
//	DATABASE_URL=postgres://... REDIS_URL=redis://... \
//	  go test ./soak -run '^$' -bench Soak -benchtime 1x -timeout 30m -soak.duration 10m
package soak

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

var (
	duration = flag.Duration("soak.duration", 10*time.Minute, "how long to send traffic")
	workers  = flag.Int("soak.workers", 16, "concurrent clients")
)

// instance is one ttconsole process.
type instance struct {
	url string
	cmd *exec.Cmd
	log string
}

func freeAddr(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start runs the binary with args and env and waits until url answers 200.
func start(b *testing.B, bin, dir, name, probe string, env []string, args ...string) *instance {
	b.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		f.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(probe)
		if err == nil {
			res.Body.Close()
			if res.StatusCode < 500 {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not come up; see %s", name, logPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return &instance{cmd: cmd, log: logPath}
}

// rss is a process's resident memory in KiB.
func rss(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

// tally is what the clients saw.
type tally struct {
	mu          sync.Mutex
	ids         []string
	byStatus    map[string]int // "200", "429 rate_limited", ...
	gateway5xx  []string       // 5xx the gateway made itself, not passed on from the upstream
	latencies   []time.Duration
	transport   int // calls that got no answer at all
	taskIDs     []string
	requestsOut atomic.Int64
}

func (t *tally) add(status int, typ, id string, took time.Duration, upstreamFailure bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	key := strconv.Itoa(status)
	if typ != "" {
		key += " " + typ
	}
	t.byStatus[key]++
	if id != "" {
		t.ids = append(t.ids, id)
	}
	t.latencies = append(t.latencies, took)
	if status >= 500 && !(upstreamFailure && status == http.StatusBadGateway) {
		t.gateway5xx = append(t.gateway5xx, key+" "+id)
	}
}

// keys are the secrets the traffic uses, one per kind of answer.
type keys struct {
	main, scoped, ipLocked, quota, poor, limited string
	accounts                                     []string // whose keys they are
}

func setup(b *testing.B, st *models.Store) keys {
	ctx := context.Background()
	account := func(email string, usd int64) string {
		u, err := st.CreateAccount(ctx, email, "soak test password")
		if err != nil {
			b.Fatal(err)
		}
		if usd > 0 {
			if _, err := st.Credit(ctx, u.AccountID, usd*models.MicrosPerUSD, models.LedgerAdjustment, "soak funds", models.LedgerRef{}); err != nil {
				b.Fatal(err)
			}
		}
		return u.AccountID
	}
	key := func(acct string, in models.KeyInput) string {
		_, secret, err := st.CreateAPIKey(ctx, acct, models.AdminCLI, in)
		if err != nil {
			b.Fatal(err)
		}
		return secret
	}
	rich := account("soak@example.com", 1_000_000)
	poor := account("poor@example.com", 0)
	return keys{
		main:     key(rich, models.KeyInput{Name: "main", RPM: "1000000"}),
		scoped:   key(rich, models.KeyInput{Name: "large only", Models: []string{"tt-chat-large"}, RPM: "1000000"}),
		ipLocked: key(rich, models.KeyInput{Name: "office only", AllowedIPs: "10.0.0.0/8", RPM: "1000000"}),
		quota:    key(rich, models.KeyInput{Name: "tiny budget", MonthlyLimitUSD: "0.01", RPM: "1000000"}),
		poor:     key(poor, models.KeyInput{Name: "poor", RPM: "1000000"}),
		limited:  key(rich, models.KeyInput{Name: "slow", RPM: "2"}),
		accounts: []string{rich, poor},
	}
}

func chat(model string, stream bool, maxTokens int, meta map[string]string) string {
	m := map[string]any{"model": model, "max_tokens": maxTokens, "stream": stream,
		"messages": []map[string]string{{"role": "user", "content": "Tell me about the soak test, briefly."}}, "metadata": meta}
	out, _ := json.Marshal(m)
	return string(out)
}

// call is one request of the mix.
type call struct {
	method, path, secret, body string
	upstreamFailure            bool // the upstream was told to fail: a 502 is expected
	task                       bool
}

// pick draws the next call: mostly chat (5% slow upstream, 2% failing),
// streams, embeddings and tasks, and every error of the catalogue.
func pick(r *rand.Rand, k keys, tasks func() string) call {
	meta := map[string]string{"sim_output_tokens": strconv.Itoa(4 + r.IntN(60))}
	var failing bool
	switch x := r.Float64(); {
	case x < 0.05:
		meta["sim_delay_ms"] = strconv.Itoa(1000 + r.IntN(2000))
	case x < 0.07:
		meta["sim_status"] = "500"
		failing = true
	}
	switch x := r.Float64(); {
	case x < 0.50:
		return call{method: "POST", path: "/v1/chat/completions", secret: k.main, body: chat("tt-chat-small", false, 256, meta), upstreamFailure: failing}
	case x < 0.65:
		meta["sim_interval_ms"] = "2"
		if r.IntN(10) == 0 {
			meta["sim_cut_after"] = "3"
		}
		return call{method: "POST", path: "/v1/chat/completions", secret: k.main, body: chat("tt-chat-small", true, 256, meta), upstreamFailure: failing}
	case x < 0.70:
		return call{method: "POST", path: "/v1/embeddings", secret: k.main, body: `{"model":"tt-embed-1","input":["soak","test"]}`}
	case x < 0.74:
		outcome := "succeeded"
		if r.IntN(5) == 0 {
			outcome = "failed"
		}
		b, _ := json.Marshal(map[string]any{"model": "tt-video-1", "input": "a soak test",
			"metadata": map[string]string{"sim_duration_ms": strconv.Itoa(200 + r.IntN(1800)), "sim_outcome": outcome}})
		return call{method: "POST", path: "/v1/tasks", secret: k.main, body: string(b), task: true}
	case x < 0.77:
		if id := tasks(); id != "" {
			if r.IntN(3) == 0 {
				return call{method: "POST", path: "/v1/tasks/" + id + "/cancel", secret: k.main}
			}
			return call{method: "GET", path: "/v1/tasks/" + id, secret: k.main}
		}
		return call{method: "GET", path: "/v1/account", secret: k.main}
	case x < 0.80:
		return call{method: "GET", path: "/v1/account", secret: k.main}
	case x < 0.82:
		return call{method: "GET", path: "/v1/models", secret: k.main}
	case x < 0.84:
		return call{method: "POST", path: "/v1/chat/completions", secret: "sk-tt-unknownunknownunknownunknown", body: chat("tt-chat-small", false, 16, nil)}
	case x < 0.86:
		return call{method: "POST", path: "/v1/chat/completions", secret: k.ipLocked, body: chat("tt-chat-small", false, 16, nil)}
	case x < 0.88:
		return call{method: "POST", path: "/v1/chat/completions", secret: k.scoped, body: chat("tt-chat-small", false, 16, nil)}
	case x < 0.90:
		return call{method: "POST", path: "/v1/chat/completions", secret: k.poor, body: chat("tt-chat-small", false, 16, nil)}
	case x < 0.92:
		return call{method: "POST", path: "/v1/chat/completions", secret: k.quota, body: chat("tt-chat-large", false, 4096, nil)}
	case x < 0.94:
		return call{method: "POST", path: "/v1/chat/completions", secret: k.limited, body: chat("tt-chat-small", false, 16, nil)}
	case x < 0.96:
		return call{method: "POST", path: "/v1/chat/completions", secret: k.main, body: `{"model":"tt-chat-small","messages":`}
	case x < 0.98:
		return call{method: "GET", path: "/v1/v1/models", secret: k.main}
	case x < 0.981:
		return call{method: "POST", path: "/v1/chat/completions", secret: k.main, body: `{"pad":"` + strings.Repeat("x", 1<<20) + `"}`}
	}
	return call{method: "GET", path: "/v1/nope", secret: k.main}
}

func BenchmarkSoak(b *testing.B) {
	if os.Getenv("DATABASE_URL") == "" || os.Getenv("REDIS_URL") == "" {
		b.Skip("the soak runs on PostgreSQL and Redis: set DATABASE_URL and REDIS_URL")
	}
	for range b.N {
		soak(b, *duration)
	}
}

func soak(b *testing.B, d time.Duration) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "ttconsole")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	_, dbURL := testenv.EmptyDB(b)
	migrate := exec.Command(bin, "migrate")
	migrate.Env = append(os.Environ(), "DATABASE_URL="+dbURL)
	if out, err := migrate.CombinedOutput(); err != nil {
		b.Fatalf("migrate: %v\n%s", err, out)
	}
	db, err := models.Open("", dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	st := models.NewStore(db)
	k := setup(b, st)

	simAddr := freeAddr(b)
	start(b, bin, dir, "upstream", "http://"+simAddr+"/", nil, "upstream-sim", "--addr", simAddr)
	// The upstream is the simulator in a process of its own: nothing real
	// is sold, so the test payment provider is asked for.
	env := []string{"DATABASE_URL=" + dbURL, "UPSTREAM_URL=http://" + simAddr, "TT_LOG_FORMAT=json", "TT_PAYMENTS=test", "STRIPE_SECRET_KEY="}
	var insts []*instance
	for i := range 2 {
		addr := freeAddr(b)
		in := start(b, bin, dir, fmt.Sprintf("instance%d", i+1), "http://"+addr+"/readyz", env, "serve", "--addr", addr)
		in.url = "http://" + addr
		insts = append(insts, in)
	}
	b.Logf("two instances on PostgreSQL + Redis, logs in %s; %d clients for %s", dir, *workers, d)

	client := &http.Client{Timeout: 90 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t := &tally{byStatus: map[string]int{}}
	var next atomic.Uint64
	var taskMu sync.Mutex
	recentTasks := []string{}
	randomTask := func() string {
		taskMu.Lock()
		defer taskMu.Unlock()
		if len(recentTasks) == 0 {
			return ""
		}
		return recentTasks[rand.IntN(len(recentTasks))]
	}

	// Memory of each instance, every five seconds.
	type sample struct {
		at  time.Duration
		kib []int64
	}
	var samples []sample
	began := time.Now()
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			s := sample{at: time.Since(began)}
			for _, in := range insts {
				s.kib = append(s.kib, rss(in.cmd.Process.Pid))
			}
			samples = append(samples, s)
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for w := range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for ctx.Err() == nil {
				c := pick(r, k, randomTask)
				in := insts[next.Add(1)%uint64(len(insts))]
				req, _ := http.NewRequest(c.method, in.url+c.path, strings.NewReader(c.body))
				req.Header.Set("Authorization", "Bearer "+c.secret)
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				res, err := client.Do(req)
				if err != nil {
					t.mu.Lock()
					t.transport++
					t.mu.Unlock()
					continue
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				t.requestsOut.Add(1)
				var e struct {
					Error struct{ Type string } `json:"error"`
					ID    string                `json:"id"`
				}
				if res.StatusCode >= 400 || !bytes.HasPrefix(body, []byte("data:")) {
					json.Unmarshal(body, &e)
				}
				t.add(res.StatusCode, e.Error.Type, res.Header.Get("X-TT-Request-ID"), time.Since(t0), c.upstreamFailure)
				if c.task && res.StatusCode == http.StatusAccepted && e.ID != "" {
					taskMu.Lock()
					recentTasks = append(recentTasks, e.ID)
					if len(recentTasks) > 200 {
						recentTasks = recentTasks[100:]
					}
					taskMu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	sent := time.Since(began)

	// Drain: tasks finish (a few seconds at most), then nothing is held.
	deadline := time.Now().Add(60 * time.Second)
	for {
		running, err := st.RunningTasks(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if len(running) == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Errorf("%d tasks still running a minute after the traffic stopped", len(running))
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	close(stopSampling)
	<-sampled

	// Checks.
	if len(t.gateway5xx) > 0 {
		b.Errorf("%d 5xx made by the gateway itself, e.g. %v", len(t.gateway5xx), t.gateway5xx[:min(5, len(t.gateway5xx))])
	}
	if t.transport > 0 {
		b.Errorf("%d calls got no answer at all", t.transport)
	}
	var held int64
	for _, a := range k.accounts {
		w, err := st.WalletOf(context.Background(), a)
		if err != nil {
			b.Fatal(err)
		}
		held += w.HeldMicros
	}
	if held != 0 {
		b.Errorf("held %d µ$ after draining, want 0", held)
	}
	for _, a := range k.accounts {
		if err := st.LedgerInvariant(context.Background(), a); err != nil {
			b.Errorf("ledger invariant of %s: %v", a, err)
		}
	}
	ids := slices.Clone(t.ids)
	slices.Sort(ids)
	if dup := len(ids) - len(slices.Compact(ids)); dup > 0 {
		b.Errorf("%d request ids were given to two answers", dup)
	}
	ids = slices.Compact(ids)
	// Every account's log, as its CSV export reads it.
	logged := map[string]bool{}
	rows := 0
	for _, a := range k.accounts {
		if err := st.EachRequestText(context.Background(), a, models.RequestFilter{}, func(r *models.RequestText) error {
			logged[r.ID] = true
			rows++
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	found := 0
	for _, id := range ids {
		if logged[id] {
			found++
		}
	}
	if found != len(ids) || rows != len(ids) {
		b.Errorf("%d request ids received, %d of them in the log, %d rows in all: want one row per id", len(ids), found, rows)
	}

	// Memory: growth over the last five minutes (the last half of a
	// shorter run).
	window := min(5*time.Minute, sent/2)
	from := samples[0]
	for _, s := range samples {
		if s.at <= sent-window {
			from = s
		}
	}
	last := samples[len(samples)-1]
	growth := make([]float64, len(insts))
	for i := range insts {
		if from.kib[i] == 0 {
			continue
		}
		growth[i] = float64(last.kib[i]-from.kib[i]) / float64(from.kib[i]) * 100
		if growth[i] >= 10 {
			b.Errorf("instance %d: RSS grew %.1f%% over the last %s (%d → %d KiB)", i+1, growth[i], window, from.kib[i], last.kib[i])
		}
	}

	// Figures.
	slices.Sort(t.latencies)
	q := func(p float64) time.Duration { return t.latencies[int(p*float64(len(t.latencies)-1))] }
	statuses := make([]string, 0, len(t.byStatus))
	for s, n := range t.byStatus {
		statuses = append(statuses, fmt.Sprintf("%s: %d", s, n))
	}
	slices.Sort(statuses)
	b.Logf("%d answers in %s (%.0f/s); latency p50 %s, p99 %s, max %s", len(t.latencies), sent.Round(time.Second),
		float64(len(t.latencies))/sent.Seconds(), q(0.5).Round(time.Millisecond), q(0.99).Round(time.Millisecond), q(1).Round(time.Millisecond))
	b.Logf("answers by status: %s", strings.Join(statuses, ", "))
	b.Logf("request rows %d for %d ids received; held after draining %d; gateway-made 5xx %d", rows, len(ids), held, len(t.gateway5xx))
	for i := range insts {
		b.Logf("instance %d RSS: first %d KiB, at -%s %d KiB, last %d KiB (%+.1f%% over the window)", i+1,
			samples[0].kib[i], window.Round(time.Second), from.kib[i], last.kib[i], growth[i])
	}
	b.ReportMetric(float64(len(t.latencies))/sent.Seconds(), "answers/s")
	b.ReportMetric(float64(len(t.gateway5xx)), "gateway-5xx")
	b.ReportMetric(slices.Max(growth), "max-rss-growth-%")
}
