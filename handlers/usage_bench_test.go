package handlers_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"ttconsole/internal/testenv"
)

// The Usage page benchmark (issue 23: p95 ≤ 50 ms for every grouping,
// for an account with 10M requests over 30 days). It runs only under
// -bench, on the Requests page benchmark's dataset and flags (see
// requests_bench_test.go), which it seeds when short:
//
//	go test ./handlers -run '^$' -bench UsagePage -benchtime 1x -timeout 0 \
//	    -rq.db /tmp/rqbench.db -rq.rows 10000000 -rq.other 1000000
//
// A dataset seeded before the roll-up existed gets it from migration 15.
func BenchmarkUsagePage(b *testing.B) {
	db, engine := rqBenchOpen(b)
	defer db.Close()
	start := time.Now()
	if n, err := db.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	} else if n > 0 {
		b.Logf("applied %d migrations in %s", n, time.Since(start).Round(time.Millisecond))
	}
	srv := testenv.NewServerOn(b, db)
	rqBenchAccount(b, srv.Store, "big@example.com", *rqBenchRows)
	rqBenchAccount(b, srv.Store, "small@example.com", *rqBenchOther)

	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(p string) int {
		res, err := client.Get(srv.URL + p)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	res, err := client.Get(srv.URL + "/login")
	if err != nil {
		b.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	tok := testenv.FieldValue(b, string(page), "_csrf")
	res, err = client.PostForm(srv.URL+"/login", url.Values{"_csrf": {tok}, "email": {"big@example.com"}, "password": {rqBenchPassword}})
	if err != nil || res.StatusCode != http.StatusSeeOther {
		b.Fatalf("login: %v", err)
	}
	res.Body.Close()

	measure := func(p string) rqTimings {
		for range 5 { // warm
			get(p)
		}
		out := make(rqTimings, *rqBenchN)
		for i := range out {
			t0 := time.Now()
			if status := get(p); status != http.StatusOK {
				b.Fatalf("GET %s: %d", p, status)
			}
			out[i] = time.Since(t0)
		}
		return out
	}
	week := time.Now().UTC().AddDate(0, 0, -6).Format("2006-01-02")
	cases := []struct{ name, path string }{
		{"30 days by model", "/usage?group=model"},
		{"30 days by key", "/usage?group=key"},
		{"30 days by day", "/usage?group=day"},
		{"7 days by model, hours", "/usage?group=model&granularity=hour&from=" + week},
		{"7 days by key, hours", "/usage?group=key&granularity=hour&from=" + week},
		{"CSV, 30 days by model", "/usage.csv?group=model"},
	}
	b.ResetTimer()
	for range b.N {
		var report strings.Builder
		load, _ := os.ReadFile("/proc/loadavg")
		fields := strings.Fields(string(load))
		fmt.Fprintf(&report, "\n%s; dataset: %d requests of the measured account, %d of another, over %d days; %d loads per page; load average %s\n",
			engine, *rqBenchRows, *rqBenchOther, *rqBenchDays, *rqBenchN, strings.Join(fields[:min(3, len(fields))], " "))
		worst := time.Duration(0)
		for _, c := range cases {
			t := measure(c.path)
			fmt.Fprintf(&report, "%-30s p50 %7s  p95 %7s  p99 %7s\n", c.name, ms(t.pct(.5)), ms(t.pct(.95)), ms(t.pct(.99)))
			b.ReportMetric(float64(t.pct(.95).Microseconds())/1000, "p95-ms-"+strings.NewReplacer(" ", "-", ",", "").Replace(c.name))
			worst = max(worst, t.pct(.95))
		}
		b.ReportMetric(float64(worst.Microseconds())/1000, "worst-p95-ms")
		fmt.Print(report.String())
	}
}
