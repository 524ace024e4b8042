package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// product is the ttconsole binary run as a real process.
type product struct {
	t   *testing.T
	bin string
	env []string
}

func buildProduct(t *testing.T, env []string) *product {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ttconsole")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return &product{t: t, bin: bin, env: append(os.Environ(), env...)}
}

func (p *product) run(args ...string) string {
	p.t.Helper()
	cmd := exec.Command(p.bin, args...)
	cmd.Env = p.env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		p.t.Fatalf("ttconsole %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

var listeningRE = regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)

// serve starts the server and returns its base URL once it answers.
func (p *product) serve() (*exec.Cmd, string) {
	p.t.Helper()
	cmd := exec.Command(p.bin, "serve", "--addr", "127.0.0.1:0")
	cmd.Env = p.env
	cmd.Stdout = io.Discard
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				addr <- m[1]
				sent = true
			}
		}
	}()
	select {
	case a := <-addr:
		return cmd, "http://" + a
	case <-time.After(30 * time.Second):
		p.t.Fatal("server did not start")
	}
	return nil, ""
}

// TestCrashSafety kills the server with SIGKILL in the middle of a load of
// calls, streams and tasks, restarts it, and checks that every request id
// a client received has its row, every hold ended, and the ledger holds.
//
// It lives in package main because what it tests is the serve command as
// deployed: main.go's start-up (reaping what the killed process left open,
// resuming its tasks) over the writes the process had made. Only a real
// process can be killed mid-write, so it builds this package's binary.
func TestCrashSafety(t *testing.T) {
	path, dbURL := testenv.EmptyDB(t)
	if path == "" {
		path = filepath.Join(t.TempDir(), "unused.db")
	}
	p := buildProduct(t, []string{"TT_DB=" + path, "DATABASE_URL=" + dbURL, "TT_LOG_FORMAT=json",
		"TT_HOLD_TTL=3s", "TT_UPSTREAM_TIMEOUT=2s", "TT_TASK_TTL=2s", "UPSTREAM_URL="})
	p.run("admin", "account", "create", "--email", "crash@example.com", "--password", "long enough password")
	p.run("admin", "credit", "--email", "crash@example.com", "--usd", "100", "--memo", "test funds")
	secret := p.run("admin", "key", "create", "--email", "crash@example.com", "--name", "load", "--rpm", "100000")

	srv, base := p.serve()
	var (
		mu  sync.Mutex
		ids []string
	)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	bodies := []string{
		`{"model":"tt-chat-small","messages":[{"role":"user","content":"hello"}],"max_tokens":50,"metadata":{"sim_delay_ms":"300"}}`,
		`{"model":"tt-chat-small","messages":[{"role":"user","content":"hello"}],"max_tokens":50,"stream":true,"metadata":{"sim_interval_ms":"30","sim_output_tokens":"40"}}`,
		`{"model":"tt-chat-small","messages":[{"role":"user","content":"hello"}],"metadata":{"sim_status":"500"}}`,
		`{"model":"tt-chat-large","messages":[{"role":"user","content":"hello"}],"max_tokens":99999}`,
	}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				path, body := "/v1/chat/completions", bodies[(w+i)%len(bodies)]
				if (w+i)%5 == 0 {
					path, body = "/v1/tasks", `{"model":"tt-video-1","input":"x","metadata":{"sim_duration_ms":"800"}}`
				}
				req, _ := http.NewRequestWithContext(ctx, "POST", base+path, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+secret)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					continue
				}
				if id := res.Header.Get("X-TT-Request-ID"); id != "" {
					mu.Lock()
					ids = append(ids, id)
					mu.Unlock()
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		}()
	}
	// Kill it once calls are flowing (a busy machine may take a while).
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		mu.Lock()
		n := len(ids)
		mu.Unlock()
		if n >= 20 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // and in the middle of some
	srv.Process.Signal(syscall.SIGKILL)
	srv.Wait()
	stop()
	wg.Wait()
	if len(ids) < 10 {
		t.Fatalf("only %d calls answered before the crash", len(ids))
	}

	// Restart after the holds' TTL: the start-up reaper and the task runner
	// end whatever the crash left open.
	time.Sleep(3500 * time.Millisecond)
	srv, base = p.serve()
	db, err := models.Open(path, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := models.NewStore(db)
	u, err := store.UserByEmail(context.Background(), "crash@example.com")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Open holds show as the wallet's held money; running tasks as
		// the runner's own list.
		w, err := store.WalletOf(context.Background(), u.AccountID)
		if err != nil {
			t.Fatal(err)
		}
		tasks, err := store.RunningTasks(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		open, running := w.HeldMicros, len(tasks)
		if open == 0 && running == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d µ$ held and %d tasks running after the restart", open, running)
		}
		time.Sleep(100 * time.Millisecond)
	}
	missing, pending, open := 0, 0, 0
	for _, id := range ids {
		r, err := store.RequestOf(context.Background(), u.AccountID, id)
		if err != nil {
			missing++
			continue
		}
		if r.BillingOutcome == models.OutcomePending {
			pending++
		}
		if r.HoldStatus == models.HoldOpen {
			open++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d request ids given to clients have no row", missing, len(ids))
	}
	if pending != 0 || open != 0 {
		t.Fatalf("%d requests still pending, %d holds open", pending, open)
	}
	if p, err := store.ListRequests(context.Background(), u.AccountID, models.RequestFilter{Outcome: models.OutcomePending}, "", 10); err != nil || len(p.Rows) != 0 {
		t.Fatalf("the Requests page lists pending calls after the restart (%v)", err)
	}
	if err := store.LedgerInvariant(context.Background(), u.AccountID); err != nil {
		t.Fatal(err)
	}
	// The restarted server serves.
	res, err := http.Get(base + "/healthz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("after restart: %v", err)
	}
	res.Body.Close()
	var acct struct {
		Held int64 `json:"held_micros"`
	}
	req, _ := http.NewRequest("GET", base+"/v1/account", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	if res, err := http.DefaultClient.Do(req); err == nil {
		json.NewDecoder(res.Body).Decode(&acct)
		res.Body.Close()
	}
	if acct.Held != 0 {
		t.Fatalf("held %d after recovery", acct.Held)
	}
	t.Logf("%s", fmt.Sprintf("%d calls before the crash, all recorded", len(ids)))
}
