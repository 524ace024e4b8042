package bench

import (
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/sessions"
	"gorm.io/gorm"

	"ttconsole/handlers"
	"ttconsole/models"
	"ttconsole/upstream"
)

var (
	profileOut  = flag.String("gw.cpuprofile", "", "write a CPU profile of BenchmarkInProcess's load phase to this file")
	profileTime = flag.Duration("gw.profiletime", 10*time.Second, "length of BenchmarkInProcess's load phase")
)

// BenchmarkInProcess serves the gateway inside the test process — the same
// handlers.App that `ttconsole serve` builds, on a SQLite file, in front of
// `ttconsole upstream-sim` running as its own process — so that it can be
// looked into without changing the product:
//
//   - it counts the SQL statements and transactions of one chat call, and
//     the time spent in them, at concurrency 1;
//
//   - it drives concurrency 16 and, with -gw.cpuprofile, writes a CPU
//     profile of that phase (the load generator's own HTTP client shows in
//     it too, under net/http.(*Client)).
//
//     go test ./bench -run '^$' -bench InProcess -benchtime 1x -gw.cpuprofile /tmp/gw.pprof
//     go tool pprof -top bench.test /tmp/gw.pprof
func BenchmarkInProcess(b *testing.B) {
	root := moduleRoot(b)
	tmp := b.TempDir()
	bin := goBuild(b, root, tmp, "ttconsole", ".")
	dbPath := filepath.Join(tmp, "bench.db")
	sim := startProc(b, "upstream-sim", cleanEnv(), bin, "upstream-sim", "--addr", "127.0.0.1:0")

	// The CLI migrates the file and makes the account and key, as for the
	// benchmark against the real process.
	env := cleanEnv("TT_DB=" + dbPath)
	runCLI(b, env, bin, "admin", "account", "create", "--email", benchEmail, "--password", "bench-password-0123")
	runCLI(b, env, bin, "admin", "credit", "--email", benchEmail, "--usd", fmt.Sprint(creditUSD), "--memo", "benchmark credit")
	secret := runCLI(b, env, bin, "admin", "key", "create", "--email", benchEmail, "--name", "bench", "--rpm", "1000000")

	db, err := models.Open(dbPath, "")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	sqlStats := newSQLCounter(db)
	store := models.NewStore(db)
	// Wired as main.go's serve does, with UPSTREAM_URL set.
	app := &handlers.App{
		Store:           store,
		Log:             slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Cookies:         sessions.NewCookieStore([]byte("0123456789abcdef0123456789abcdef")),
		Upstream:        upstream.NewHTTP(sim.url(), time.Minute),
		UpstreamTimeout: time.Minute,
		HoldTTL:         10 * time.Minute,
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
		secret: secret, client: newClient(concurrencyHigh)}

	// Warm up, then count what one call does, one call at a time.
	if r := drive(t, 4, time.Second); r.errs > 0 {
		b.Fatalf("warm-up: %s", r.firstEr)
	}
	const counted = 300
	sqlStats.start()
	start := time.Now()
	for i := 0; i < counted; i++ {
		if _, err := call(t, chatBody); err != nil {
			b.Fatal(err)
		}
	}
	took := time.Since(start)
	sqlStats.stop()
	fmt.Printf("\nIn-process gateway, concurrency 1: %.2f ms per call\n", ms(took/counted))
	sqlStats.print(os.Stdout, counted)

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
	r := drive(t, concurrencyHigh, *profileTime)
	if *profileOut != "" {
		pprof.StopCPUProfile()
	}
	b.StopTimer()
	if r.errs > 0 {
		b.Fatalf("%d calls failed; first: %s", r.errs, r.firstEr)
	}
	s := summarize([]round{r})
	fmt.Printf("In-process gateway, concurrency %d: %.0f req/s, p50 %.2f ms, p99 %.2f ms\n",
		concurrencyHigh, s.rps, ms(s.p50), ms(s.p99))
	b.ReportMetric(s.rps, "req/s_c16")
}

// sqlCounter counts, through GORM callbacks, the statements the product
// runs and the time spent in each kind, and the distinct transactions
// they ran in. It is off until start, so it does not count set-up.
type sqlCounter struct {
	mu   sync.Mutex
	on   bool
	kind map[string]*stmtStat
	txs  map[*sql.Tx]bool
}

type stmtStat struct {
	n    int
	time time.Duration
}

var tableRE = regexp.MustCompile("(?i)\\b(?:from|into|update)\\s+[`\"]?(\\w+)")

func newSQLCounter(db *models.DB) *sqlCounter {
	c := &sqlCounter{kind: map[string]*stmtStat{}, txs: map[*sql.Tx]bool{}}
	// The writer and the reader pool share one GORM configuration, and with
	// it one set of callbacks, so the connection a statement ran on tells
	// them apart.
	wsql, _ := db.W.DB()
	t0 := func(d *gorm.DB) { d.InstanceSet("bench:t0", time.Now()) }
	count := func(d *gorm.DB) {
		conn := "read"
		switch d.Statement.ConnPool {
		case wsql:
			conn = "write"
		}
		c.record(conn, d)
	}
	// GORM's processor types are unexported, hence one pair of lines each.
	cb := db.W.Callback()
	cb.Create().Before("gorm:create").Register("bench:t0", t0)
	cb.Create().After("gorm:create").Register("bench:count", count)
	cb.Query().Before("gorm:query").Register("bench:t0", t0)
	cb.Query().After("gorm:query").Register("bench:count", count)
	cb.Update().Before("gorm:update").Register("bench:t0", t0)
	cb.Update().After("gorm:update").Register("bench:count", count)
	cb.Delete().Before("gorm:delete").Register("bench:t0", t0)
	cb.Delete().After("gorm:delete").Register("bench:count", count)
	cb.Row().Before("gorm:row").Register("bench:t0", t0)
	cb.Row().After("gorm:row").Register("bench:count", count)
	cb.Raw().Before("gorm:raw").Register("bench:t0", t0)
	cb.Raw().After("gorm:raw").Register("bench:count", count)
	return c
}

func (c *sqlCounter) record(conn string, d *gorm.DB) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on {
		return
	}
	q := strings.TrimSpace(d.Statement.SQL.String())
	verb, _, _ := strings.Cut(q, " ")
	table := d.Statement.Table
	if m := tableRE.FindStringSubmatch(q); m != nil {
		table = m[1]
	}
	where := conn
	if tx, ok := d.Statement.ConnPool.(*sql.Tx); ok { // only the writer starts transactions
		c.txs[tx] = true
		where = "write tx"
	}
	k := fmt.Sprintf("%-9s %-7s %s", where, strings.ToUpper(verb), table)
	s := c.kind[k]
	if s == nil {
		s = &stmtStat{}
		c.kind[k] = s
	}
	s.n++
	if t0, ok := d.InstanceGet("bench:t0"); ok {
		s.time += time.Since(t0.(time.Time))
	}
}

func (c *sqlCounter) start() { c.mu.Lock(); c.on = true; c.mu.Unlock() }
func (c *sqlCounter) stop()  { c.mu.Lock(); c.on = false; c.mu.Unlock() }

// print writes the statements per call, most frequent first.
func (c *sqlCounter) print(w io.Writer, calls int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.kind))
	total, totalTime := 0, time.Duration(0)
	for k, s := range c.kind {
		keys = append(keys, k)
		total += s.n
		totalTime += s.time
	}
	slices.Sort(keys)
	fmt.Fprintf(w, "SQL per call: %.1f statements in %.1f transactions, %.2f ms inside statements\n",
		float64(total)/float64(calls), float64(len(c.txs))/float64(calls), ms(totalTime/time.Duration(calls)))
	for _, k := range keys {
		s := c.kind[k]
		fmt.Fprintf(w, "  %5.2f × %s  (%.3f ms each)\n", float64(s.n)/float64(calls), k, ms(s.time/time.Duration(s.n)))
	}
}
