package bench

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// chatBody is the load: a small non-streaming chat call. The simulator
// answers max_tokens (16) tokens of output.
var chatBody = []byte(`{"model":"tt-chat-small","messages":[{"role":"user","content":"Say hello to the benchmark in a few words."}],"max_tokens":16}`)

// moduleRoot is the directory of the ttconsole module this package lives in.
func moduleRoot(tb testing.TB) string {
	tb.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		tb.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// goBuild builds the package pkg of the module into dir and returns the
// binary's path. Building once keeps `go run`'s compile out of the figures.
func goBuild(tb testing.TB, root, dir, name, pkg string) string {
	tb.Helper()
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// cleanEnv is the environment for the product's processes: this one's,
// minus what would send them elsewhere than the benchmark's SQLite file
// (DATABASE_URL would select PostgreSQL), plus extra. Their upstream is
// the simulator, so payments are the test provider's.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "DATABASE_URL", "REDIS_URL", "UPSTREAM_URL", "TT_DB", "TT_ADDR", "TT_LOG_FORMAT", "TT_TRUSTED_PROXIES",
			"TT_PAYMENTS", "STRIPE_SECRET_KEY":
			continue
		}
		env = append(env, kv)
	}
	return append(append(env, "TT_PAYMENTS=test"), extra...)
}

// logDir is where the servers' logs go; empty keeps them in the
// benchmark's temporary directory, removed when it ends.
var logDir = flag.String("bench.logs", "", "keep the log of every server a benchmark starts in this directory, as <benchmark>-<server>.log")

// proc is a server the benchmark started as its own process.
type proc struct {
	name string
	cmd  *exec.Cmd
	addr string // host:port it listens on
	log  string // the file its stdout and stderr go to
	done chan struct{}
}

var (
	listeningRE = regexp.MustCompile(`listening on (\S+)`)
	unsafeRE    = regexp.MustCompile(`[^A-Za-z0-9._-]+`)
)

// startProc runs a server and waits for the line of its log that says
// where it listens (each of ours prints "… listening on host:port …").
// Its stdout and stderr go straight to a file, as a deployed server's log
// does: the gateway writes its JSON request log there at full speed, and
// no reader in the benchmark's process shares the CPU with it.
func startProc(tb testing.TB, name string, env []string, bin string, args ...string) *proc {
	tb.Helper()
	dir := *logDir
	if dir == "" {
		dir = tb.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	logPath := filepath.Join(dir, unsafeRE.ReplaceAllString(tb.Name()+"-"+name, "_")+".log")
	f, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Start()
	f.Close() // the process has its own descriptor
	if err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	tb.Cleanup(p.stop)
	go func() {
		cmd.Wait()
		close(p.done)
	}()

	deadline := time.After(60 * time.Second)
	for {
		out, _ := os.ReadFile(logPath)
		if m := listeningRE.FindSubmatch(out); m != nil {
			p.addr = string(m[1])
			return p
		}
		select {
		case <-p.done:
			out, _ = os.ReadFile(logPath)
			tb.Fatalf("%s exited before listening:\n%s", name, out)
		case <-deadline:
			tb.Fatalf("%s did not start listening within 60 s; its log:\n%s", name, out)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// stop ends the process gracefully (SIGTERM), then for sure.
func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) url() string { return "http://" + p.addr }

// peakRSS is the process's peak resident set size (VmHWM) in bytes.
func (p *proc) peakRSS() (int64, error) { return p.status("VmHWM") }

// rss is the process's resident set size now (VmRSS) in bytes.
func (p *proc) rss() (int64, error) { return p.status("VmRSS") }

// status reads a size in kB from the process's /proc status.
func (p *proc) status(field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no " + field + " in /proc status")
}

// cpu is the CPU time (user + system) the process has used so far.
func (p *proc) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 12th and 13th of them, in clock ticks (100 a second).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// runCLI runs a ttconsole command to completion and returns its stdout.
func runCLI(tb testing.TB, env []string, bin string, args ...string) string {
	tb.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("ttconsole %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// target is one server under load.
type target struct {
	name    string
	url     string   // full URL of the chat endpoint
	secrets []string // worker w calls with secrets[w % len(secrets)]
	client  *http.Client
}

// newClient is the load generator's keep-alive client: at most maxConns
// connections (so concurrency c keeps c warm connections, never more), and
// every call bounded in time.
func newClient(maxConns int) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxConnsPerHost:     maxConns,
			MaxIdleConnsPerHost: maxConns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// sampled is the request id of one answered call and the key that made
// it, which can read it back.
type sampled struct{ secret, id string }

// round is what one turn of load on one target measured.
type round struct {
	lat     []time.Duration // one per successful call
	errs    int             // calls that did not answer 200
	firstEr string          // the first failure, for the report
	elapsed time.Duration   // wall time from the first call to the last answer
	ids     []sampled       // a sample of X-TT-Request-ID of successful calls
	okBy    map[string]int  // successful calls per secret
}

func (r *round) ok() int { return len(r.lat) }

// drive sends chat calls to t from conc workers, each one call at a time,
// for d, and returns the latencies. Calls in flight at the deadline finish
// and count.
func drive(t target, conc int, d time.Duration) round {
	var (
		mu  sync.Mutex
		out = round{okBy: map[string]int{}}
		wg  sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			secret := t.secrets[w%len(t.secrets)]
			var mine round
			for i := 0; time.Now().Before(deadline); i++ {
				t0 := time.Now()
				id, err := call(t, secret, chatBody)
				took := time.Since(t0)
				if err != nil {
					mine.errs++
					if mine.firstEr == "" {
						mine.firstEr = err.Error()
					}
					continue
				}
				mine.lat = append(mine.lat, took)
				if i%200 == 0 && id != "" {
					mine.ids = append(mine.ids, sampled{secret, id})
				}
			}
			mu.Lock()
			out.lat = append(out.lat, mine.lat...)
			out.ids = append(out.ids, mine.ids...)
			out.okBy[secret] += len(mine.lat)
			out.errs += mine.errs
			if out.firstEr == "" {
				out.firstEr = mine.firstEr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	out.elapsed = time.Since(start)
	return out
}

// call makes one chat call with a key and returns the request id the
// answer carries; anything but a 200 with a body is an error.
func call(t target, secret string, body []byte) (string, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+secret)
	res, err := t.client.Do(req)
	if err != nil {
		return "", err
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return "", err
	}
	if res.StatusCode != http.StatusOK || len(b) == 0 {
		return "", fmt.Errorf("%s answered %d: %.300s", t.name, res.StatusCode, b)
	}
	return res.Header.Get("X-TT-Request-ID"), nil
}

// summary pools the rounds of one target at one concurrency.
type summary struct {
	calls, errs int
	rps         float64 // calls per second over the rounds' summed wall time
	p50, p99    time.Duration
	roundRPS    []float64
	ids         []sampled
	okBy        map[string]int
	firstErr    string
}

func summarize(rounds []round) summary {
	s := summary{okBy: map[string]int{}}
	var lat []time.Duration
	var wall time.Duration
	for _, r := range rounds {
		lat = append(lat, r.lat...)
		wall += r.elapsed
		s.errs += r.errs
		s.ids = append(s.ids, r.ids...)
		for k, n := range r.okBy {
			s.okBy[k] += n
		}
		s.roundRPS = append(s.roundRPS, float64(r.ok())/r.elapsed.Seconds())
		if s.firstErr == "" {
			s.firstErr = r.firstEr
		}
	}
	s.calls = len(lat)
	if wall > 0 {
		s.rps = float64(s.calls) / wall.Seconds()
	}
	slices.Sort(lat)
	s.p50, s.p99 = percentile(lat, 0.50), percentile(lat, 0.99)
	return s
}

// percentile of sorted latencies, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
