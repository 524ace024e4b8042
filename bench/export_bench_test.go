package bench

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"ttconsole/internal/testenv"
)

var (
	exportDB       = flag.String("ex.db", "", "SQLite file holding the account to export (the Requests page benchmark's -rq.db); empty = a temporary one seeded with -ex.rows")
	exportRows     = flag.Int("ex.rows", 200_000, "requests to seed when -ex.db is empty")
	exportEmail    = flag.String("ex.email", "big@example.com", "the account to export")
	exportPassword = flag.String("ex.password", "long enough password", "its password")
)

// BenchmarkExport exports an account's whole request log as CSV from
// `ttconsole serve` running as its own process, as in production, and
// reports the rows per second and the server's resident memory: before the
// export and its peak (VmHWM) at the end.
//
//	go test ./bench -run '^$' -bench Export -benchtime 1x -timeout 0 -ex.db /tmp/rqbench.db
func BenchmarkExport(b *testing.B) {
	root := moduleRoot(b)
	tmp := b.TempDir()
	bin := goBuild(b, root, tmp, "ttconsole", ".")
	path := *exportDB
	if path == "" {
		path = filepath.Join(tmp, "export.db")
		env := cleanEnv("TT_DB=" + path)
		runCLI(b, env, bin, "admin", "account", "create", "--email", *exportEmail, "--password", *exportPassword)
		runCLI(b, env, bin, "admin", "seed", "--email", *exportEmail, "--requests", fmt.Sprint(*exportRows))
	}
	srv := startProc(b, "ttconsole serve", cleanEnv("TT_DB="+path), bin, "serve", "--addr", "127.0.0.1:0")

	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Get(srv.url() + "/login")
	if err != nil {
		b.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	res, err = client.PostForm(srv.url()+"/login", url.Values{
		"_csrf": {testenv.FieldValue(b, string(page), "_csrf")}, "email": {*exportEmail}, "password": {*exportPassword}})
	if err != nil || res.StatusCode != http.StatusSeeOther {
		b.Fatalf("login: %v", err)
	}
	res.Body.Close()

	before, err := srv.rss()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	res, err = client.Get(srv.url() + "/requests.csv")
	if err != nil {
		b.Fatal(err)
	}
	rows, err := testenv.CSVRows(res.Body)
	el := time.Since(start)
	b.StopTimer()
	if res.StatusCode != http.StatusOK || err != nil || rows <= 0 {
		b.Fatalf("export: status %d, %d rows, %v", res.StatusCode, rows, err)
	}
	peak, err := srv.peakRSS()
	if err != nil {
		b.Fatal(err)
	}
	rate := float64(rows) / el.Seconds()
	fmt.Printf("\nCSV export from `ttconsole serve` (its own process): %d rows in %s = %.0f rows/s; "+
		"server RSS %.1f MiB before, peak (VmHWM) %.1f MiB\n", rows, el.Round(time.Millisecond), rate,
		float64(before)/(1<<20), float64(peak)/(1<<20))
	b.ReportMetric(rate, "rows/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-rss-MiB")
}
