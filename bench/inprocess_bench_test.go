package bench

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/sessions"

	"ttconsole/handlers"
	"ttconsole/models"
	"ttconsole/upstream"
)

var (
	profileOut  = flag.String("gw.cpuprofile", "", "write a CPU profile of BenchmarkInProcess's load phase to this file")
	profileTime = flag.Duration("gw.profiletime", 10*time.Second, "length of BenchmarkInProcess's load phase")
	profileConc = flag.Int("gw.profileconc", concurrencyHigh, "concurrency of BenchmarkInProcess's load phase")
)

// BenchmarkInProcess serves the gateway inside the test process — the same
// handlers.App that `ttconsole serve` builds, on a SQLite file (or, when
// DATABASE_URL is set, on a PostgreSQL database of its own, as
// BenchmarkGateway's), in front of `ttconsole upstream-sim` running as its
// own process — so that it can be looked into without changing the product:
//
//   - it times one chat call at a time;
//
//   - it drives concurrency 16 (-gw.profileconc) and, with -gw.cpuprofile,
//     writes a CPU profile of that phase (the load generator's own HTTP client shows in
//     it too, under net/http.(*Client)).
//
//     go test ./bench -run '^$' -bench InProcess -benchtime 1x -gw.cpuprofile /tmp/gw.pprof
//     go tool pprof -top bench.test /tmp/gw.pprof
func BenchmarkInProcess(b *testing.B) {
	root := moduleRoot(b)
	tmp := b.TempDir()
	bin := goBuild(b, root, tmp, "ttconsole", ".")
	dbPath, dbURL := filepath.Join(tmp, "bench.db"), ""
	where := "TT_DB=" + dbPath
	if base := os.Getenv("DATABASE_URL"); base != "" {
		dbURL, _ = benchDatabase(b, base, *pgSync)
		where = "DATABASE_URL=" + dbURL
	}
	sim := startProc(b, "upstream-sim", cleanEnv(), bin, "upstream-sim", "--addr", "127.0.0.1:0")

	// The CLI migrates the database and makes the account and key, as for
	// the benchmark against the real process.
	env := cleanEnv(where)
	runCLI(b, env, bin, "admin", "account", "create", "--email", benchEmail, "--password", "bench-password-0123")
	runCLI(b, env, bin, "admin", "credit", "--email", benchEmail, "--usd", fmt.Sprint(creditUSD), "--memo", "benchmark credit")
	secret := runCLI(b, env, bin, "admin", "key", "create", "--email", benchEmail, "--name", "bench", "--rpm", "1000000")

	db, err := models.Open(dbPath, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	store := models.NewStore(db)
	// Wired as main.go's serve does, with UPSTREAM_URL set.
	app := &handlers.App{
		Store:           store,
		Log:             slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Cookies:         sessions.NewCookieStore([]byte("0123456789abcdef0123456789abcdef")),
		Upstream:        upstream.NewHTTP(sim.url(), handlers.DefaultUpstreamTimeout),
		UpstreamTimeout: handlers.DefaultUpstreamTimeout,
		HoldTTL:         handlers.DefaultHoldTTL,
	}
	e, err := app.NewServer()
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	t := target{name: "gateway (in process)", url: "http://" + ln.Addr().String() + "/v1/chat/completions",
		secrets: []string{secret}, client: newClient(concurrencyHigh)}

	// Warm up, then time one call at a time.
	if r := drive(t, 4, time.Second); r.errs > 0 {
		b.Fatalf("warm-up: %s", r.firstEr)
	}
	const counted = 300
	start := time.Now()
	for i := 0; i < counted; i++ {
		if _, err := call(t, secret, chatBody); err != nil {
			b.Fatal(err)
		}
	}
	took := time.Since(start)
	fmt.Printf("\nIn-process gateway, concurrency 1: %.2f ms per call\n", ms(took/counted))

	b.ResetTimer()
	if *profileOut != "" {
		f, err := os.Create(*profileOut)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
	}
	cpu0 := processCPU()
	r := drive(t, *profileConc, *profileTime)
	cpu := processCPU() - cpu0
	if *profileOut != "" {
		pprof.StopCPUProfile()
	}
	b.StopTimer()
	if r.errs > 0 {
		b.Fatalf("%d calls failed; first: %s", r.errs, r.firstEr)
	}
	s := summarize([]round{r})
	fmt.Printf("In-process gateway, concurrency %d: %.0f req/s, p50 %.2f ms, p99 %.2f ms, %.0f µs of CPU per call (gateway and load generator)\n",
		*profileConc, s.rps, ms(s.p50), ms(s.p99), float64(cpu.Microseconds())/float64(r.ok()))
	b.ReportMetric(s.rps, "req/s")
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
