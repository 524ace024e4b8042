package handlers_test

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"ttconsole/internal/seed"
	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// The Requests page benchmark (issue 6, "Speed"). It runs only under
// -bench, never in plain `go test ./...`:
//
//	go test ./handlers -run '^$' -bench RequestsPages -benchtime 1x -timeout 0 \
//	    -rq.db /tmp/rqbench.db -rq.rows 10000000 -rq.other 1000000
//
// With DATABASE_URL set it runs on that PostgreSQL server, and -rq.db names
// a database there (created when missing):
//
//	DATABASE_URL=postgres://… go test ./handlers -run '^$' -bench RequestsPages -benchtime 1x -timeout 0 \
//	    -rq.db tt_rqbench -rq.rows 10000000 -rq.other 1000000 -rq.days 365
//
// -rq.db keeps the dataset between runs (seeding 11M rows takes minutes);
// without it the benchmark seeds a small one in a temporary database.
var (
	rqBenchDB    = flag.String("rq.db", "", "where the benchmark's dataset is kept (seeded when short): a SQLite file, or with DATABASE_URL a database on that server; empty = a temporary one")
	rqBenchRows  = flag.Int("rq.rows", 200_000, "requests of the measured account")
	rqBenchOther = flag.Int("rq.other", 20_000, "requests of a second account sharing the table")
	rqBenchDays  = flag.Int("rq.days", 30, "days of history the seeded requests span, up to now")
	rqBenchN     = flag.Int("rq.n", 200, "timed loads of each page")
	rqBenchCSV   = flag.Bool("rq.csv", true, "also export the whole account as CSV")
)

const rqBenchPassword = "long enough password"

// rqBenchAccount returns an account with at least n seeded requests.
func rqBenchAccount(b *testing.B, store *models.Store, email string, n int) string {
	ctx := context.Background()
	u, err := store.UserByEmail(ctx, email)
	if err != nil {
		if u2, err := store.CreateAccount(ctx, email, rqBenchPassword); err == nil {
			u = u2
		} else {
			b.Fatal(err)
		}
	}
	// Every seeded request, counted as the status chart counts them.
	chart, err := store.RequestStatusChart(ctx, u.AccountID, models.RequestFilter{}, time.Unix(0, 0), time.Now().Add(24*time.Hour), 1)
	if err != nil {
		b.Fatal(err)
	}
	have := chart[0].Total()
	if int(have) < n {
		keys, _ := store.APIKeysOf(ctx, u.AccountID)
		var ids []string
		for _, k := range keys {
			ids = append(ids, k.ID)
		}
		for len(ids) < 3 {
			k, _, err := store.CreateAPIKey(ctx, u.AccountID, models.AdminCLI, models.KeyInput{Name: "bench " + strconv.Itoa(len(ids))})
			if err != nil {
				b.Fatal(err)
			}
			ids = append(ids, k.ID)
		}
		start := time.Now()
		if _, err := seed.Requests(ctx, store, u.AccountID, seed.Options{Requests: n - int(have), KeyIDs: ids,
			Span: time.Duration(*rqBenchDays) * 24 * time.Hour}); err != nil {
			b.Fatal(err)
		}
		b.Logf("seeded %d requests for %s in %s", n-int(have), email, time.Since(start).Round(time.Millisecond))
	}
	return u.AccountID
}

// rqTimings are the durations of one page's loads.
type rqTimings []time.Duration

func (t rqTimings) pct(p float64) time.Duration {
	s := slices.Clone(t)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// rqBenchOpen opens the benchmark's database: see rqBenchDB.
func rqBenchOpen(b *testing.B) (*models.DB, string) {
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		path := *rqBenchDB
		if path == "" {
			path = filepath.Join(b.TempDir(), "bench.db")
		}
		db, err := models.Open(path, "")
		if err != nil {
			b.Fatal(err)
		}
		version, err := db.Version(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		return db, version
	}
	dbURL := ""
	if name := *rqBenchDB; name == "" {
		_, dbURL = testenv.EmptyDB(b)
	} else {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			b.Fatal(err)
		}
		defer admin.Close()
		var exists bool
		if err := admin.QueryRow("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
			b.Fatal(err)
		}
		if !exists {
			if _, err := admin.Exec("CREATE DATABASE " + pgx.Identifier{name}.Sanitize()); err != nil {
				b.Fatal(err)
			}
		}
		u, err := url.Parse(base)
		if err != nil {
			b.Fatal(err)
		}
		u.Path = "/" + name
		dbURL = u.String()
	}
	db, err := models.Open("", dbURL)
	if err != nil {
		b.Fatal(err)
	}
	version, err := db.Version(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return db, version
}

func BenchmarkRequestsPages(b *testing.B) {
	db, engine := rqBenchOpen(b)
	defer db.Close()
	if _, err := db.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	srv := testenv.NewServerOn(b, db)
	store := srv.Store
	acct := rqBenchAccount(b, store, "big@example.com", *rqBenchRows)
	rqBenchAccount(b, store, "small@example.com", *rqBenchOther)

	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(p string) (int, []byte) {
		res, err := client.Get(srv.URL + p)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res.StatusCode, body
	}
	_, page := get("/login")
	tok := testenv.FieldValue(b, string(page), "_csrf")
	res, err := client.PostForm(srv.URL+"/login", url.Values{"_csrf": {tok}, "email": {"big@example.com"}, "password": {rqBenchPassword}})
	if err != nil || res.StatusCode != http.StatusSeeOther {
		b.Fatalf("login: %v", err)
	}
	res.Body.Close()

	// Setup only: ids to open, a page of them a third of the way back
	// through the history.
	ctx := context.Background()
	var sample []string
	third := models.RequestIDAt(time.Now().Add(-time.Duration(*rqBenchDays) * 24 * time.Hour / 3))
	older, err := store.ListRequests(ctx, acct, models.RequestFilter{}, third, *rqBenchN)
	if err != nil || len(older.Rows) == 0 {
		b.Fatalf("sample ids: %v", err)
	}
	for _, r := range older.Rows {
		sample = append(sample, r.ID)
	}
	keys, _ := store.APIKeysOf(ctx, acct)
	day := time.Now().UTC().AddDate(0, 0, -3).Format("2006-01-02")
	filters := []struct{ name, query string }{
		{"unfiltered", ""},
		{"status=4xx", "status=4xx"},
		{"status=429", "status=429"},
		{"type=ip_not_allowed", "type=ip_not_allowed"},
		{"key", "key=" + keys[0].ID},
		{"model=tt-chat-large", "model=tt-chat-large"},
		{"outcome=not_charged_failed", "outcome=not_charged_failed"},
		{"from/to one day", "from=" + day + "&to=" + day},
	}
	deepCursor := func(query string) string {
		f, _ := models.ParseRequestFilter(mustQuery(query))
		cursor := ""
		// Walk 999 pages through the store (the same keyset query the page
		// runs), so the 1000th page is reached as a customer would.
		for range 999 {
			p, err := store.ListRequests(ctx, acct, f, cursor, 50)
			if err != nil {
				b.Fatal(err)
			}
			if p.Next == "" {
				return ""
			}
			cursor = p.Next
		}
		return cursor
	}
	time1 := func(p string) time.Duration {
		start := time.Now()
		status, _ := get(p)
		d := time.Since(start)
		if status != http.StatusOK {
			b.Fatalf("GET %s: %d", p, status)
		}
		return d
	}
	measure := func(paths func(i int) string) rqTimings {
		for i := range 5 { // warm
			time1(paths(i))
		}
		out := make(rqTimings, *rqBenchN)
		for i := range out {
			out[i] = time1(paths(i))
		}
		return out
	}

	b.ResetTimer()
	for range b.N {
		var report strings.Builder
		load, _ := os.ReadFile("/proc/loadavg")
		fmt.Fprintf(&report, "\n%s; dataset: %d requests of the measured account, %d of another, over %d days; %d loads per page; load average %s\n",
			engine, *rqBenchRows, *rqBenchOther, *rqBenchDays, *rqBenchN, strings.Join(strings.Fields(string(load))[:min(3, len(strings.Fields(string(load))))], " "))
		detail := measure(func(i int) string { return "/requests/" + sample[i%len(sample)] })
		fmt.Fprintf(&report, "%-30s p50 %7s  p95 %7s  p99 %7s\n", "detail page", ms(detail.pct(.5)), ms(detail.pct(.95)), ms(detail.pct(.99)))
		b.ReportMetric(float64(detail.pct(.99).Microseconds())/1000, "detail-p99-ms")
		fmt.Fprintf(&report, "\n%-30s %18s %18s %8s\n", "list page", "first p50/p95", "1000th p50/p95", "deep/1st")
		worst := 0.0
		for _, f := range filters {
			base := "/requests"
			if f.query != "" {
				base += "?" + f.query
			}
			first := measure(func(int) string { return base })
			line := fmt.Sprintf("%-30s %8s/%-8s", f.name, ms(first.pct(.5)), ms(first.pct(.95)))
			if c := deepCursor(f.query); c != "" {
				sep := "?"
				if f.query != "" {
					sep = "&"
				}
				deep := measure(func(int) string { return base + sep + "cursor=" + c })
				ratio := float64(deep.pct(.95)) / float64(first.pct(.95))
				worst = max(worst, ratio)
				line += fmt.Sprintf(" %8s/%-8s %8.2f", ms(deep.pct(.5)), ms(deep.pct(.95)), ratio)
			} else {
				line += fmt.Sprintf(" %18s %8s", "(fewer pages)", "")
			}
			fmt.Fprintln(&report, line)
			b.ReportMetric(float64(first.pct(.95).Microseconds())/1000, "p95-ms-"+strings.NewReplacer("=", "-", "/", "-", " ", "-").Replace(f.name))
		}
		b.ReportMetric(worst, "worst-deep/first")

		// The status chart, which the page fetches after it renders.
		fmt.Fprintf(&report, "\n%-30s %18s\n", "status chart (fetched after)", "p50/p95")
		for _, q := range []string{"", "status=4xx", "model=tt-chat-large"} {
			chart := measure(func(int) string { return "/requests/chart.svg?" + q })
			name := "last 24 h"
			if q != "" {
				name += ", " + q
			}
			fmt.Fprintf(&report, "%-30s %8s/%-8s\n", name, ms(chart.pct(.5)), ms(chart.pct(.95)))
		}

		// The count of matching requests, fetched after the page too.
		fmt.Fprintf(&report, "\n%-30s %18s\n", "match count (fetched after)", "p50/p95")
		for _, f := range filters {
			count := measure(func(int) string { return "/requests/count?" + f.query })
			fmt.Fprintf(&report, "%-30s %8s/%-8s\n", f.name, ms(count.pct(.5)), ms(count.pct(.95)))
		}
		if !*rqBenchCSV {
			fmt.Print(report.String())
			continue
		}

		// CSV: the whole account, streamed; resident memory sampled meanwhile.
		var peak atomic.Int64
		done := make(chan struct{})
		go func() {
			for {
				peak.Store(max(peak.Load(), rssBytes()))
				select {
				case <-done:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
		before := rssBytes()
		cpu0 := cpuTime()
		start := time.Now()
		res, err := client.Get(srv.URL + "/requests.csv")
		if err != nil {
			b.Fatal(err)
		}
		rows, _ := testenv.CSVRows(res.Body)
		el := time.Since(start)
		cpu := cpuTime() - cpu0
		close(done)
		rate := float64(rows) / el.Seconds()
		fmt.Fprintf(&report, "\nCSV export: %d rows in %s = %.0f rows/s (%.0f rows per CPU-second, server and client together); "+
			"process RSS %d MB before, peak %d MB during\n",
			rows, el.Round(time.Millisecond), rate, float64(rows)/cpu.Seconds(), before>>20, peak.Load()>>20)
		b.ReportMetric(rate, "csv-rows/s")
		b.ReportMetric(float64(peak.Load()>>20), "csv-peak-rss-MB")
		fmt.Print(report.String())
	}
}

func mustQuery(q string) url.Values {
	v, _ := url.ParseQuery(q)
	return v
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }

// cpuTime is the CPU the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rssBytes is the process's resident memory, from /proc (0 elsewhere).
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
