package bench

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ttconsole/models" // also registers the "sqlite3" database/sql driver
)

var (
	streamCount    = flag.Int("st.streams", 500, "concurrent streaming calls through the gateway")
	ttfbCalls      = flag.Int("st.ttfb", 200, "sequential streaming calls per target for time to first byte")
	ttfbRound      = flag.Int("st.ttfbround", 20, "calls per turn on one target, alternating gateway and bare proxy")
	goroutineWait  = flag.Duration("st.settle", 3*time.Second, "wait after the load before counting the gateway's goroutines")
	goroutineDrain = flag.Duration("st.drain", 100*time.Second, "how long to keep watching the goroutine count return to its baseline (0: don't)")
)

// The targets of issue 5, "Speed and footprint".
const (
	streamTokens        = 50
	targetStreamRSSMB   = 200.0 // gateway peak RSS with 500 streams open
	targetAddedTTFBms   = 1.0   // ms added to p50 time to first byte at concurrency 1
	goroutineHandful    = 5     // "back to the baseline" within this many
	streamClientTimeout = 2 * time.Minute
)

// streamBody is the load of the concurrency test: 50 tokens, one every
// 20 ms, so each stream stays open about a second. It asks for the final
// usage chunk, which the gateway passes on only when asked.
var streamBody = []byte(`{"model":"tt-chat-small","messages":[{"role":"user","content":"Stream a short answer to the benchmark."}],` +
	`"max_tokens":64,"stream":true,"stream_options":{"include_usage":true},"metadata":{"sim_interval_ms":"20","sim_output_tokens":"` + strconv.Itoa(streamTokens) + `"}}`)

// ttfbBody is the load of the time-to-first-byte test: the same stream,
// shorter, so hundreds of sequential calls take seconds. The simulator
// sends its first chunk at once; the interval only spaces the rest.
var ttfbBody = []byte(`{"model":"tt-chat-small","messages":[{"role":"user","content":"Stream a short answer to the benchmark."}],` +
	`"max_tokens":64,"stream":true,"stream_options":{"include_usage":true},"metadata":{"sim_interval_ms":"20","sim_output_tokens":"4"}}`)

// BenchmarkStreams measures the gateway's streaming path against the
// targets of issue 5: 500 concurrent streams (peak RSS, every stream
// billed on its delivered usage, no goroutine left behind) and the time to
// first byte at concurrency 1 against a bare reverse proxy. Like
// BenchmarkGateway it runs once whatever b.N is (use -benchtime 1x) and
// prints a summary with MET/MISSED per target. It fails when a stream does
// not complete or the database does not show it charged.
func BenchmarkStreams(b *testing.B) {
	root := moduleRoot(b)
	tmp := b.TempDir()
	bin := goBuild(b, root, tmp, "ttconsole", ".")
	bareBin := goBuild(b, root, tmp, "bareproxy", "./bench/bareproxy")
	dbPath := filepath.Join(tmp, "bench.db")

	sim := startProc(b, "upstream-sim", cleanEnv(), bin, "upstream-sim", "--addr", "127.0.0.1:0")
	env := cleanEnv("TT_DB="+dbPath, "UPSTREAM_URL="+sim.url(), "TT_LOG_FORMAT=json")
	gw := startProc(b, "ttconsole serve", env, bin, "serve", "--addr", "127.0.0.1:0")
	bare := startProc(b, "bare proxy", cleanEnv(), bareBin, "--addr", "127.0.0.1:0", "--upstream", sim.url())

	runCLI(b, env, bin, "admin", "account", "create", "--email", benchEmail, "--password", "bench-password-0123")
	runCLI(b, env, bin, "admin", "credit", "--email", benchEmail, "--usd", fmt.Sprint(creditUSD), "--memo", "benchmark credit")
	secret := runCLI(b, env, bin, "admin", "key", "create", "--email", benchEmail, "--name", "bench", "--rpm", "1000000")
	if !strings.HasPrefix(secret, "sk-tt-") {
		b.Fatalf("admin key create printed %q, not a key", secret)
	}

	fmt.Printf("\nStreaming through the gateway — %s, %d CPUs, %s\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), runtime.Version())

	b.ResetTimer()

	// 1. Concurrent streams.
	before, err := goroutines(gw.url())
	if err != nil {
		b.Fatal(err)
	}
	client := streamClient(*streamCount)
	gwTarget := target{name: "gateway", url: gw.url() + "/v1/chat/completions", secrets: []string{secret}, client: client}
	res := concurrentStreams(gwTarget, *streamCount)
	loadEnd := time.Now()
	if res.failed > 0 {
		b.Fatalf("%d of %d streams failed; first: %s", res.failed, *streamCount, res.firstErr)
	}
	slices.Sort(res.ttfb)
	slices.Sort(res.total)
	fmt.Printf("%d concurrent streams (%d tokens, 20 ms apart): all read to [DONE] in %.2f s; "+
		"first byte p50 %.1f / p99 %.1f ms, whole stream p50 %.0f / p99 %.0f ms\n",
		*streamCount, streamTokens, res.elapsed.Seconds(), ms(percentile(res.ttfb, 0.5)), ms(percentile(res.ttfb, 0.99)),
		ms(percentile(res.total, 0.5)), ms(percentile(res.total, 0.99)))

	rss, err := gw.peakRSS()
	if err != nil {
		b.Fatal(err)
	}
	rssMB := float64(rss) / 1e6
	fmt.Printf("gateway peak RSS (VmHWM) %.1f MB (%.1f MiB)\n", rssMB, float64(rss)/(1<<20))

	billedOK := verifyStreamsBilled(b, dbPath, res.ids)

	// The load generator's own keep-alive connections would hold a
	// goroutine each in the gateway: close them first.
	client.CloseIdleConnections()
	time.Sleep(*goroutineWait)
	after, err := goroutines(gw.url())
	if err != nil {
		b.Fatal(err)
	}
	goroutinesOK := after <= before+goroutineHandful
	fmt.Printf("gateway goroutines (go_goroutines): %d before the load, %d %s after it\n", before, after, *goroutineWait)
	// 2. Time to first byte at concurrency 1, alternating.
	targets := [2]target{
		{name: "gateway", url: gw.url() + "/v1/chat/completions", secrets: []string{secret}, client: streamClient(1)},
		{name: "bare", url: bare.url() + "/v1/chat/completions", secrets: []string{secret}, client: streamClient(1)},
	}
	for _, t := range targets { // warm connections and caches, unmeasured
		for i := 0; i < 10; i++ {
			if _, err := streamOnce(t, ttfbBody); err != nil {
				b.Fatalf("warm-up on %s: %v", t.name, err)
			}
		}
	}
	var ttfb [2][]time.Duration
	for n := 0; len(ttfb[0]) < *ttfbCalls || len(ttfb[1]) < *ttfbCalls; n++ {
		order := []int{0, 1}
		if n%2 == 1 {
			order = []int{1, 0}
		}
		for _, i := range order {
			for k := 0; k < *ttfbRound && len(ttfb[i]) < *ttfbCalls; k++ {
				r, err := streamOnce(targets[i], ttfbBody)
				if err != nil {
					b.Fatalf("%s: %v", targets[i].name, err)
				}
				ttfb[i] = append(ttfb[i], r.ttfb)
			}
		}
	}
	// Then watch the count return: the time-to-first-byte calls' own
	// connections are closed first, so only what the gateway keeps counts.
	for _, t := range targets {
		t.client.CloseIdleConnections()
	}
	drained, drainedAfter := after, *goroutineWait
	if !goroutinesOK && *goroutineDrain > 0 {
		// Tell a leak from connections that are merely pooled: idle
		// keep-alive connections to the upstream end at the transport's
		// IdleConnTimeout (90 s); a leaked goroutine never does.
		start := time.Now()
		for time.Since(start) < *goroutineDrain {
			time.Sleep(2 * time.Second)
			if drained, err = goroutines(gw.url()); err != nil {
				b.Fatal(err)
			}
			drainedAfter = time.Since(loadEnd).Round(time.Second)
			if drained <= before+goroutineHandful {
				break
			}
		}
		fmt.Printf("gateway goroutines later (after the time-to-first-byte calls too): %d, %s after the load\n", drained, drainedAfter)
	}

	b.StopTimer()
	var p50, p99 [2]time.Duration
	fmt.Printf("time to first SSE data line, concurrency 1, %d calls each in turns of %d:\n", *ttfbCalls, *ttfbRound)
	for i, t := range targets {
		slices.Sort(ttfb[i])
		p50[i], p99[i] = percentile(ttfb[i], 0.5), percentile(ttfb[i], 0.99)
		fmt.Printf("  %-8s p50 %.3f ms, p99 %.3f ms\n", t.name, ms(p50[i]), ms(p99[i]))
	}
	added := ms(p50[0] - p50[1])
	fmt.Printf("  added by the gateway: p50 +%.3f ms, p99 +%.3f ms\n", added, ms(p99[0]-p99[1]))

	fmt.Printf("targets: %d streams peak RSS %.1f MB (≤ %.0f) %s; every stream charged %d tokens, no hold open %s; "+
		"goroutines %d → %d after %s (baseline + %d) %s, %d after %s; added TTFB p50 %.3f ms (≤ %.0f) %s\n",
		*streamCount, rssMB, targetStreamRSSMB, verdict(rssMB <= targetStreamRSSMB), streamTokens, verdict(billedOK),
		before, after, *goroutineWait, goroutineHandful, verdict(goroutinesOK), drained, drainedAfter,
		added, targetAddedTTFBms, verdict(added <= targetAddedTTFBms))
	b.ReportMetric(rssMB, "rss_MB_500streams")
	b.ReportMetric(float64(after-before), "goroutines_left")
	b.ReportMetric(ms(p50[0]), "gw_ttfb_p50_ms")
	b.ReportMetric(ms(p50[1]), "bare_ttfb_p50_ms")
	b.ReportMetric(added, "added_ttfb_p50_ms")
	if !billedOK {
		b.Fail()
	}
}

// streamClient allows maxConns connections and gives a call minutes: a
// stream of 500 concurrent ones waits its turn for SQLite's writer.
func streamClient(maxConns int) *http.Client {
	return &http.Client{
		Timeout: streamClientTimeout,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxConnsPerHost:     maxConns,
			MaxIdleConnsPerHost: maxConns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// streamResult is what one streaming call saw.
type streamResult struct {
	id     string
	ttfb   time.Duration // request sent → first "data:" line read
	total  time.Duration // request sent → [DONE]
	chunks int           // content chunks
	usage  *struct {
		CompletionTokens int `json:"completion_tokens"`
	}
}

// streamOnce makes one streaming chat call and reads it to [DONE].
func streamOnce(t target, body []byte) (streamResult, error) {
	var r streamResult
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return r, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+t.secrets[0])
	t0 := time.Now()
	res, err := t.client.Do(req)
	if err != nil {
		return r, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		return r, fmt.Errorf("%s answered %d: %.300s", t.name, res.StatusCode, b)
	}
	r.id = res.Header.Get("X-TT-Request-ID")
	rd := bufio.NewReader(res.Body)
	for {
		line, err := rd.ReadBytes('\n')
		if data, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r\n"), []byte("data:")); ok {
			if r.ttfb == 0 {
				r.ttfb = time.Since(t0)
			}
			data = bytes.TrimSpace(data)
			if bytes.Equal(data, []byte("[DONE]")) {
				r.total = time.Since(t0)
				io.Copy(io.Discard, rd)
				return r, nil
			}
			var chunk struct {
				Choices []struct {
					Delta struct {
						Content string `json:"content"`
					} `json:"delta"`
				} `json:"choices"`
				Usage *struct {
					CompletionTokens int `json:"completion_tokens"`
				} `json:"usage"`
			}
			if json.Unmarshal(data, &chunk) != nil {
				return r, fmt.Errorf("%s sent a data line that is not JSON: %.300s", t.name, data)
			}
			for _, ch := range chunk.Choices {
				if ch.Delta.Content != "" {
					r.chunks++
				}
			}
			if chunk.Usage != nil {
				r.usage = chunk.Usage
			}
		}
		if err != nil {
			return r, fmt.Errorf("%s: stream ended without [DONE] after %d chunks: %v", t.name, r.chunks, err)
		}
	}
}

// streamsRun is what the concurrent streams measured.
type streamsRun struct {
	ttfb, total []time.Duration
	ids         []string
	failed      int
	firstErr    string
	elapsed     time.Duration
}

// concurrentStreams opens n streams at once and reads each to [DONE];
// each must carry all its tokens and the final usage.
func concurrentStreams(t target, n int) streamsRun {
	var (
		mu  sync.Mutex
		out streamsRun
		wg  sync.WaitGroup
	)
	startGun := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startGun
			r, err := streamOnce(t, streamBody)
			if err == nil && (r.chunks != streamTokens || r.usage == nil || r.usage.CompletionTokens != streamTokens || r.id == "") {
				err = fmt.Errorf("stream %s: %d content chunks, usage %+v (want %d)", r.id, r.chunks, r.usage, streamTokens)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				out.failed++
				if out.firstErr == "" {
					out.firstErr = err.Error()
				}
				return
			}
			out.ttfb = append(out.ttfb, r.ttfb)
			out.total = append(out.total, r.total)
			out.ids = append(out.ids, r.id)
		}()
	}
	start := time.Now()
	close(startGun)
	wg.Wait()
	out.elapsed = time.Since(start)
	return out
}

// goroutines reads go_goroutines from the gateway's /metrics.
func goroutines(base string) (int, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := c.Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f), err
		}
	}
	return 0, fmt.Errorf("no go_goroutines in /metrics (status %d)", res.StatusCode)
}

// verifyStreamsBilled reads the SQLite file read-only and checks that
// each stream's request row is a charged, answered streaming call with
// the final usage's 50 completion tokens, and that no hold is left open.
// Settlement follows [DONE], so it waits a little for the last ones.
func verifyStreamsBilled(b *testing.B, dbPath string, ids []string) bool {
	b.Helper()
	db, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	type row struct {
		outcome       string
		status        int
		stream        bool
		tokens        int
		hold, charged int64
	}
	var (
		rows                map[string]row
		openHolds, heldSum  int64
		charged, ledger     int64
		deadline            = time.Now().Add(30 * time.Second)
		bad                 []string
		chargedN, wrongToks int
	)
	for {
		rows = map[string]row{}
		rs, err := db.Query(`SELECT id, billing_outcome, status, stream, completion_tokens, hold_micros, charged_micros
			FROM requests WHERE path = '/v1/chat/completions'`)
		if err != nil {
			b.Fatal(err)
		}
		for rs.Next() {
			var id string
			var r row
			if err := rs.Scan(&id, &r.outcome, &r.status, &r.stream, &r.tokens, &r.hold, &r.charged); err != nil {
				b.Fatal(err)
			}
			if want[id] {
				rows[id] = r
			}
		}
		if err := rs.Close(); err != nil {
			b.Fatal(err)
		}
		err = db.QueryRow(`SELECT
			(SELECT count(*) FROM requests WHERE hold_status = 'open'),
			(SELECT coalesce(sum(held_micros), 0) FROM wallets),
			(SELECT coalesce(sum(charged_micros), 0) FROM requests),
			(SELECT coalesce(sum(amount_micros), 0) FROM ledger_entries WHERE kind = 'charge')`).
			Scan(&openHolds, &heldSum, &charged, &ledger)
		if err != nil {
			b.Fatal(err)
		}
		if (len(rows) == len(ids) && openHolds == 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, id := range ids {
		r, ok := rows[id]
		switch {
		case !ok:
			bad = append(bad, id+": no row")
		case r.outcome != models.OutcomeCharged || r.status != http.StatusOK || !r.stream || r.charged <= 0 || r.charged > r.hold:
			bad = append(bad, fmt.Sprintf("%s: %+v", id, r))
		case r.tokens != streamTokens:
			wrongToks++
			bad = append(bad, fmt.Sprintf("%s: %d completion tokens", id, r.tokens))
		default:
			chargedN++
		}
	}
	ok := len(bad) == 0 && openHolds == 0 && heldSum == 0 && charged == -ledger
	fmt.Printf("verified (SQLite, read-only): %d of %d streams have a charged row with %d completion tokens; "+
		"open holds %d, held %d µ$; charged %s = ledger %s\n",
		chargedN, len(ids), streamTokens, openHolds, heldSum, models.FormatUSD(charged), models.FormatUSD(-ledger))
	if len(bad) > 0 {
		fmt.Printf("  not as expected (%d, %d with wrong token counts), first: %s\n", len(bad), wrongToks, bad[0])
	}
	return ok
}
