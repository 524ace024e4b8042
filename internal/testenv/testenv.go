// Package testenv gives tests the real parts they run against: a fresh
// database (SQLite in a temp dir, or a new PostgreSQL database when
// DATABASE_URL is set; either engine for a test of that engine's own
// path), the real server on loopback, and headless Chromium.
package testenv

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/gorilla/sessions"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/labstack/echo/v4"

	"ttconsole/handlers"
	"ttconsole/internal/payments"
	"ttconsole/internal/ratelimit"
	"ttconsole/models"
)

// InCI reports whether the tests run in CI, where nothing may be skipped.
func InCI() bool { return os.Getenv("CI") == "true" }

// DB returns a migrated, empty database that lives as long as the test,
// on the engine the tests run on.
func DB(t testing.TB) *models.DB {
	t.Helper()
	path, dbURL := EmptyDB(t)
	return migrated(t, path, dbURL)
}

// SQLiteDB returns a migrated, empty SQLite database whatever engine the
// tests run on, for a test of SQLite's own path.
func SQLiteDB(t testing.TB) *models.DB {
	t.Helper()
	return migrated(t, filepath.Join(t.TempDir(), "test.db"), "")
}

// PostgresDB returns a migrated, empty PostgreSQL database whatever engine
// the tests run on (see PostgresURL), for a test of PostgreSQL's own path.
func PostgresDB(t testing.TB) *models.DB {
	t.Helper()
	return migrated(t, "", EmptyPostgres(t))
}

func migrated(t testing.TB, path, dbURL string) *models.DB {
	t.Helper()
	db, err := models.Open(path, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// EmptyDB makes a new, empty database for one test and returns how to
// reach it: a SQLite path, or a PostgreSQL URL when DATABASE_URL is set
// (a fresh database on that server, dropped when the test ends).
func EmptyDB(t testing.TB) (path, dbURL string) {
	t.Helper()
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		return filepath.Join(t.TempDir(), "test.db"), ""
	}
	return "", emptyPostgres(t, base)
}

// EmptyPostgres makes a new, empty database on the server PostgresURL
// names, dropped when the test ends, and returns its URL.
func EmptyPostgres(t testing.TB) string {
	t.Helper()
	return emptyPostgres(t, PostgresURL(t))
}

func emptyPostgres(t testing.TB, base string) string {
	t.Helper()
	name := "tt_test_" + randomHex(6)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", base)
		if err == nil {
			admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			admin.Close()
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// Postgres reports whether tests run on PostgreSQL.
func Postgres() bool { return os.Getenv("DATABASE_URL") != "" }

// PostgresURL returns the PostgreSQL server of the tests that only
// PostgreSQL can run (several instances on one database, its partitions),
// whatever engine the others run on: DATABASE_URL, or else
// TT_TEST_POSTGRES_URL, which CI sets for its SQLite pass. Without either
// such a test fails in CI and is skipped, with a message, on a developer
// machine.
func PostgresURL(t testing.TB) string {
	t.Helper()
	return serverURL(t, "DATABASE_URL", "TT_TEST_POSTGRES_URL", "the tests that run on PostgreSQL",
		"this test runs on PostgreSQL (set DATABASE_URL, or TT_TEST_POSTGRES_URL to keep the other tests on SQLite)")
}

// serverURL returns the URL in the variable named first, or else in the
// one named beside it (CI's SQLite pass sets only those). Without either
// the test fails in CI, for whom, and is skipped on a developer machine,
// saying why.
func serverURL(t testing.TB, first, beside, whom, why string) string {
	t.Helper()
	if u := cmp.Or(os.Getenv(first), os.Getenv(beside)); u != "" {
		return u
	}
	if InCI() {
		t.Fatalf("%s or %s is required in CI for %s: .ci/run starts the server and sets them", first, beside, whom)
	}
	t.Skip("skipping: " + why)
	return ""
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Server is the real product served on loopback for a test.
type Server struct {
	*httptest.Server
	Echo  *echo.Echo
	App   *handlers.App
	Store *models.Store
	DB    *models.DB
}

// Options adjust the server a test starts.
type Options struct {
	Config handlers.Config

	// Payments replaces the billing provider; nil is the test provider.
	Payments payments.Provider

	// Adjust changes the app before it starts (timeouts, TTLs, upstream).
	Adjust func(*handlers.App)

	// RedisURL, when set, counts API key rate limits in that Redis, shared
	// with every server of the test that names the same URL.
	RedisURL string
}

// NewServer starts the product on a fresh database at 127.0.0.1.
func NewServer(t testing.TB, opts ...Options) *Server {
	t.Helper()
	db := DB(t)
	return NewServerOn(t, db, opts...)
}

// NewServerOn starts the product on an existing database.
func NewServerOn(t testing.TB, db *models.DB, opts ...Options) *Server {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	store := models.NewStore(db)
	key, err := store.SecretSetting(context.Background(), "session_key", 32)
	if err != nil {
		t.Fatal(err)
	}
	app := &handlers.App{
		Config:  o.Config,
		Store:   store,
		Log:     slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Cookies: sessions.NewCookieStore(key),
	}
	app.Payments = o.Payments
	if o.RedisURL != "" {
		rdb, err := ratelimit.NewRedis(o.RedisURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rdb.Close() })
		app.RateLimitRedis = rdb
	}
	if o.Adjust != nil {
		o.Adjust(app)
	}
	e, err := app.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)                  // after the server has closed: stop background work
	srv := httptest.NewUnstartedServer(e) // binds 127.0.0.1
	if app.Config.BaseURL == "" {         // links in mail lead here
		app.Config.BaseURL = "http://" + srv.Listener.Addr().String()
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return &Server{Server: srv, Echo: e, App: app, Store: store, DB: db}
}

// Instances starts n servers of the product on one fresh database, each
// with its own connection pool, as n processes behind a load balancer
// would be.
func Instances(t testing.TB, n int, opts ...Options) []*Server {
	t.Helper()
	path, dbURL := EmptyDB(t)
	return instancesOn(t, n, path, dbURL, opts)
}

// PostgresInstances starts n servers on one fresh PostgreSQL database
// (see PostgresURL), whatever engine the other tests run on.
func PostgresInstances(t testing.TB, n int, opts ...Options) []*Server {
	t.Helper()
	return instancesOn(t, n, "", EmptyPostgres(t), opts)
}

func instancesOn(t testing.TB, n int, path, dbURL string, opts []Options) []*Server {
	t.Helper()
	out := make([]*Server, n)
	for i := range out {
		out[i] = NewServerOn(t, migrated(t, path, dbURL), opts...)
	}
	return out
}

// Client returns an HTTP client with its own cookie jar that does not
// follow redirects, so tests see every answer.
func (s *Server) Client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Body reads and closes a response body.
func Body(t testing.TB, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// CSVRows reads a CSV export to its end, line by line without keeping it,
// and returns how many records follow its header line (records here hold
// no line breaks), closing the body.
func CSVRows(body io.ReadCloser) (int, error) {
	defer body.Close()
	rows := -1 // the header
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		rows++
	}
	return rows, sc.Err()
}

// Doc parses an HTML page.
func Doc(t testing.TB, page string) *goquery.Document {
	t.Helper()
	d, err := goquery.NewDocumentFromReader(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// FieldValue returns the value of the first input called name in page.
func FieldValue(t testing.TB, page, name string) string {
	t.Helper()
	v, _ := Doc(t, page).Find(`input[name="` + name + `"]`).First().Attr("value")
	return v
}
