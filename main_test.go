package main

import (
	"bytes"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"ttconsole/internal/testenv"
	"ttconsole/migrations"
	"ttconsole/models"
)

// cli runs the ttconsole command line against a fresh database.
type cli struct {
	t    *testing.T
	path string
}

func newCLI(t *testing.T) *cli {
	path, dbURL := testenv.EmptyDB(t)
	t.Setenv("DATABASE_URL", dbURL)
	if path == "" {
		path = t.TempDir() + "/unused.db"
	}
	return &cli{t: t, path: path}
}

func (c *cli) run(args ...string) (string, string, error) {
	var stdout, stderr bytes.Buffer
	if len(args) > 0 && (args[0] == "migrate" || args[0] == "admin") {
		args = append(append([]string{}, args...), "--db", c.path)
	}
	err := run(context.Background(), args, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func (c *cli) store() *models.Store {
	db, err := models.Open(c.path, os.Getenv("DATABASE_URL"))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { db.Close() })
	return models.NewStore(db)
}

func TestMigrateCommand(t *testing.T) {
	c := newCLI(t)
	files, _ := fs.Glob(migrations.FS, "*.sql")
	want := len(files) + len(migrations.Go(false))
	_, stderr, err := c.run("migrate")
	if err != nil || !strings.Contains(stderr, fmt.Sprintf("applied %d migration", want)) {
		t.Fatalf("migrate: %v %q, want %d migrations applied", err, stderr, want)
	}
	_, stderr, err = c.run("migrate")
	if err != nil || !strings.Contains(stderr, "applied 0 migration") {
		t.Fatalf("second migrate: %v %q", err, stderr)
	}
}

func TestAdminAccountCreate(t *testing.T) {
	c := newCLI(t)
	out, _, err := c.run("admin", "account", "create", "--email", "ops@example.com", "--password", "operator password")
	if err != nil || !strings.HasPrefix(out, "acct_") {
		t.Fatalf("account create: %v %q", err, out)
	}
	u, err := c.store().Authenticate(context.Background(), "ops@example.com", "operator password")
	if err != nil {
		t.Fatalf("the created account cannot log in: %v", err)
	}
	// Its user is the account's owner, and a member of no other.
	if accts, err := c.store().AccountsOf(context.Background(), u.ID); err != nil || len(accts) != 1 ||
		accts[0].AccountID != strings.Fields(out)[0] || accts[0].Role != models.RoleOwner {
		t.Fatalf("the created user's accounts: %+v %v, want the owner of %s", accts, err, strings.Fields(out)[0])
	}
	_, _, err = c.run("admin", "account", "create", "--email", "ops@example.com", "--password", "operator password")
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("duplicate: %v", err)
	}
	_, _, err = c.run("admin", "account", "create", "--email", "x@example.com", "--password", "short")
	if err == nil || !strings.Contains(err.Error(), "at least 10") {
		t.Fatalf("short password: %v", err)
	}
}

func TestUnknownCommandIsAUsageError(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"frobnicate"}, &out, &errOut); err == nil || !strings.Contains(errOut.String(), "Usage") {
		t.Fatalf("unknown command: %v", err)
	}
}

func TestAdminKeyCreate(t *testing.T) {
	c := newCLI(t)
	if _, _, err := c.run("admin", "account", "create", "--email", "ops@example.com", "--password", "operator password"); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := c.run("admin", "key", "create", "--email", "ops@example.com", "--name", "batch job",
		"--models", "tt-chat-small,tt-embed-1", "--ips", "203.0.113.7,10.0.0.0/8", "--monthly-limit-usd", "12.5", "--rpm", "5000")
	if err != nil {
		t.Fatalf("key create: %v %s", err, stderr)
	}
	secret := strings.TrimSuffix(out, "\n")
	if !strings.HasPrefix(secret, "sk-tt-") || strings.ContainsAny(secret, " \n") || len(secret) != 49 {
		t.Fatalf("stdout %q, want the secret alone", out)
	}
	if strings.Contains(stderr, secret) {
		t.Fatal("the secret went to stderr too")
	}
	k, err := c.store().APIKeyBySecret(context.Background(), secret)
	if err != nil {
		t.Fatal(err)
	}
	// An operator may exceed the account's maximum of 600 rpm.
	if k.Name != "batch job" || k.Models != "tt-chat-small,tt-embed-1" || k.RPM != 5000 ||
		k.MonthlyLimitMicros == nil || *k.MonthlyLimitMicros != 12_500_000 ||
		!k.AllowsIP(netip.MustParseAddr("10.1.2.3")) || k.AllowsIP(netip.MustParseAddr("192.0.2.1")) {
		t.Fatalf("created key %+v", k)
	}
	evs, _, _ := c.store().AuditLog(context.Background(), k.AccountID, models.AuditFilter{Target: k.ID}, 10)
	if len(evs) != 1 || evs[0].Actor != "admin CLI" || evs[0].Action != models.AuditKeyCreated || evs[0].ActorUserID != nil {
		t.Fatalf("events %+v", evs)
	}

	out, _, err = c.run("admin", "key", "create", "--email", "ops@example.com", "--name", "defaults")
	if err != nil {
		t.Fatal(err)
	}
	if k, err := c.store().APIKeyBySecret(context.Background(), strings.TrimSpace(out)); err != nil ||
		k.RPM != 60 || k.Models != "" || k.AllowedIPs != "" || k.MonthlyLimitMicros != nil {
		t.Fatalf("defaults: %+v %v", k, err)
	}

	bad := []struct {
		args []string
		want string
	}{
		{[]string{"--email", "nobody@example.com", "--name", "x"}, "No user with email"},
		{[]string{"--email", "ops@example.com"}, "--name is required"},
		{[]string{"--email", "ops@example.com", "--name", "x", "--ips", "10.0.0.1/8"}, "host bits"},
		{[]string{"--email", "ops@example.com", "--name", "x", "--models", "gpt-4"}, "not a model in the catalogue"},
		{[]string{"--email", "ops@example.com", "--name", "x", "--monthly-limit-usd", "-1"}, "cannot be negative"},
		{[]string{"--email", "ops@example.com", "--name", "x", "--rpm", "0"}, "rpm: Enter a whole number"},
	}
	for _, b := range bad {
		out, _, err := c.run(append([]string{"admin", "key", "create"}, b.args...)...)
		if err == nil || !strings.Contains(err.Error(), b.want) || out != "" {
			t.Errorf("%v: %v (stdout %q), want an error containing %q", b.args, err, out, b.want)
		}
	}
	keys, _ := c.store().APIKeysOf(context.Background(), k.AccountID)
	if len(keys) != 2 {
		t.Fatalf("%d keys, want 2", len(keys))
	}
}

// syncBuffer collects what a running server writes to stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveOnce starts `ttconsole serve` on a free port, waits until it
// listens, stops it and returns what it wrote to stderr, or the error it
// refused to start with.
func (c *cli) serveOnce() (string, error) {
	c.t.Helper()
	return c.serveUntil(func(log string) bool { return strings.Contains(log, "TT Console listening") })
}

// serveUntil starts `ttconsole serve` on a free port, waits until what it
// wrote to stderr is ready, stops it and returns that, or the error it
// refused to start with.
func (c *cli) serveUntil(ready func(stderr string) bool) (string, error) {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--db", c.path}, &stdout, &stderr) }()
	deadline := time.After(20 * time.Second)
	for !ready(stderr.String()) {
		select {
		case err := <-done:
			return stderr.String(), err
		case <-deadline:
			c.t.Fatalf("serve did not start: %s", stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		c.t.Fatalf("serve stopped with %v", err)
	}
	return stderr.String(), nil
}

// TestServeRunsTheTestPaymentProviderOnlyWhenNothingRealIsSold: the test
// provider credits any recharge for free, so next to a real upstream
// serve refuses to start without Stripe unless TT_PAYMENTS=test asks for
// it; whenever it runs, the start-up log says recharges are free.
func TestServeRunsTheTestPaymentProviderOnlyWhenNothingRealIsSold(t *testing.T) {
	cases := []struct {
		name                      string
		upstream, stripeKey, mode string
		refused                   []string // what the refusal names; nil: it starts
		testMode                  bool
	}{
		{"the simulator", "", "", "", nil, true},
		{"a real upstream without Stripe", "http://127.0.0.1:9", "", "", []string{"STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "TT_PAYMENTS=test"}, false},
		{"a real upstream, test payments asked for", "http://127.0.0.1:9", "", "test", nil, true},
		{"a real upstream with Stripe", "http://127.0.0.1:9", "sk_test_x", "", nil, false},
		{"Stripe asked for", "http://127.0.0.1:9", "sk_test_x", "stripe", nil, false},
		{"Stripe asked for without its key", "", "", "stripe", []string{"TT_PAYMENTS=stripe", "STRIPE_SECRET_KEY"}, false},
		{"test asked for beside a Stripe key", "http://127.0.0.1:9", "sk_test_x", "test", []string{"TT_PAYMENTS=test", "STRIPE_SECRET_KEY"}, false},
		{"an unknown mode", "", "", "free", []string{"TT_PAYMENTS must be test or stripe", `"free"`}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLI(t)
			t.Setenv("UPSTREAM_URL", tc.upstream)
			t.Setenv("STRIPE_SECRET_KEY", tc.stripeKey)
			t.Setenv("STRIPE_WEBHOOK_SECRET", "whsec_test")
			t.Setenv("TT_PAYMENTS", tc.mode)
			stderr, err := c.serveOnce()
			if tc.refused != nil {
				if err == nil {
					t.Fatalf("serve started:\n%s", stderr)
				}
				for _, want := range tc.refused {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("refusal %q does not name %s", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("serve refused to start: %v", err)
			}
			warned := 0
			for _, line := range strings.Split(stderr, "\n") {
				if strings.Contains(line, "TEST MODE") {
					warned++
					if !strings.Contains(line, `"level":"WARN"`) || !strings.Contains(line, "recharges are free") {
						t.Errorf("test mode line %q: want a warning that recharges are free", line)
					}
				}
			}
			if want := map[bool]int{true: 1, false: 0}[tc.testMode]; warned != want {
				t.Errorf("%d TEST MODE lines at start-up, want %d:\n%s", warned, want, stderr)
			}
		})
	}
}

// runCLI runs the real command line once and returns what it printed.
func runCLI(args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// TestHelpPrintsUsageAndExitsZero: asking for help is not a mistake: the
// usage goes to stdout, every verb is listed, and the command succeeds
// without touching a database.
func TestHelpPrintsUsageAndExitsZero(t *testing.T) {
	db := t.TempDir() + "/untouched.db"
	t.Setenv("TT_DB", db)
	t.Setenv("DATABASE_URL", "")
	everyVerb := []string{"serve", "migrate", "upstream-sim", "admin account create", "admin credit", "admin key create", "admin seed", "help"}
	adminVerbs := []string{"admin account create", "admin credit", "admin key create", "admin seed"}
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, everyVerb},
		{[]string{"-h"}, everyVerb},
		{[]string{"help"}, everyVerb},
		{[]string{"admin", "--help"}, adminVerbs},
		{[]string{"admin", "-h"}, adminVerbs},
		{[]string{"admin", "help"}, adminVerbs},
		{[]string{"serve", "--help"}, []string{"--addr", "127.0.0.1:8080", "--db", "--hold-ttl", "--stream-max", "--body-timeout", "--retention-days", "--upstream-timeout", "--task-ttl"}},
		{[]string{"migrate", "--help"}, []string{"--db"}},
		{[]string{"upstream-sim", "--help"}, []string{"--addr"}},
		{[]string{"admin", "account", "create", "--help"}, []string{"--email", "--password", "--credit-usd", "--db"}},
		{[]string{"admin", "account", "create", "-h"}, []string{"--email", "--password", "--credit-usd"}},
		{[]string{"admin", "credit", "--help"}, []string{"--email", "--usd", "--memo"}},
		{[]string{"admin", "key", "create", "--help"}, []string{"--email", "--name", "--models", "--ips", "--monthly-limit-usd", "--rpm"}},
		{[]string{"admin", "seed", "--help"}, []string{"--email", "--requests", "--days"}},
	}
	for _, tc := range cases {
		out, errOut, err := runCLI(tc.args...)
		if err != nil {
			t.Errorf("%v: %v (stderr %q), want success", tc.args, err, errOut)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: stdout does not mention %q:\n%s", tc.args, w, out)
			}
		}
	}
	if _, err := os.Stat(db); err == nil {
		t.Errorf("asking for help created the database %s", db)
	}
}

// TestAdminErrorsSpeakCLI: a mistake on the command line is told in the
// command line's words, the flag named as it is typed, never a web form's
// sentence, and changes nothing.
func TestAdminErrorsSpeakCLI(t *testing.T) {
	c := newCLI(t)
	if _, _, err := c.run("admin", "account", "create", "--email", "ops@example.com", "--password", "operator password"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"admin", "account", "create"}, []string{"--email is required"}},
		{[]string{"admin", "account", "create", "--password", "operator password"}, []string{"--email is required"}},
		{[]string{"admin", "account", "create", "--email", "new@example.com"}, []string{"--password is required"}},
		{[]string{"admin", "account", "create", "--email", "bad", "--password", "short"},
			[]string{"--email: Enter a valid email address", "--password: Use at least 10 characters."}},
		{[]string{"admin", "account", "create", "--email", "new@example.com", "--password", "operator password", "--credit-usd", "0"},
			[]string{"--credit-usd must be"}},
		{[]string{"admin", "account", "create", "--email", "new@example.com", "--password", "operator password", "--credit-usd", "-5"},
			[]string{"--credit-usd must be"}},
		{[]string{"admin", "account", "create", "--email", "new@example.com", "--password", "operator password", "--credit-usd", "five"},
			[]string{"--credit-usd must be"}},
		{[]string{"admin", "credit", "--usd", "5", "--memo", "x"}, []string{"--email is required"}},
		{[]string{"admin", "key", "create", "--name", "x"}, []string{"--email is required"}},
		{[]string{"admin", "key", "create", "--email", "ops@example.com"}, []string{"--name is required"}},
		{[]string{"admin", "key", "create", "--email", "ops@example.com", "--name", "x", "--ips", "10.0.0.1/8"}, []string{"--ips: ", "host bits"}},
		{[]string{"admin", "key", "create", "--email", "ops@example.com", "--name", "x", "--models", "gpt-4"}, []string{"--models: ", "not a model in the catalogue"}},
		{[]string{"admin", "key", "create", "--email", "ops@example.com", "--name", "x", "--monthly-limit-usd", "-1"}, []string{"--monthly-limit-usd: ", "cannot be negative"}},
		{[]string{"admin", "key", "create", "--email", "ops@example.com", "--name", "x", "--rpm", "0"}, []string{"--rpm: Enter a whole number"}},
		{[]string{"admin", "seed"}, []string{"--email is required"}},
		{[]string{"admin", "key", "create", "--email", "ops@example.com", "--name", "x", "--colour", "red"}, []string{"--colour", "admin key create --help"}},
	}
	for _, tc := range cases {
		out, errOut, err := c.run(tc.args...)
		if err == nil {
			t.Errorf("%v: succeeded (stdout %q)", tc.args, out)
			continue
		}
		msg := err.Error()
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%v: %q does not say %q", tc.args, msg, w)
			}
		}
		for _, web := range []string{"highlighted", "Please correct", "usage error"} {
			if strings.Contains(msg, web) || strings.Contains(errOut, web) {
				t.Errorf("%v: %q (stderr %q) speaks of %q", tc.args, msg, errOut, web)
			}
		}
		if out != "" {
			t.Errorf("%v: printed %q on stdout", tc.args, out)
		}
	}

	// A duplicate email is one sentence, not a form's two.
	_, _, err := c.run("admin", "account", "create", "--email", "ops@example.com", "--password", "operator password")
	if err == nil || err.Error() != "An account with the email ops@example.com already exists." {
		t.Errorf("duplicate email: %v", err)
	}

	// Nothing above made an account or a key.
	if _, err := c.store().UserByEmail(context.Background(), "new@example.com"); models.ErrorCode(err) != models.ENOTFOUND {
		t.Errorf("a refused create left an account behind: %v", err)
	}
	u, _ := c.store().UserByEmail(context.Background(), "ops@example.com")
	if keys, _ := c.store().APIKeysOf(context.Background(), u.AccountID); len(keys) != 0 {
		t.Errorf("refused key creates left %d keys", len(keys))
	}
}

// TestAdminAccountCreateWithCredit: --credit-usd opens the wallet with a
// balance, one ledger entry an operator can see.
func TestAdminAccountCreateWithCredit(t *testing.T) {
	c := newCLI(t)
	out, _, err := c.run("admin", "account", "create", "--email", "ops@example.com", "--password", "operator password", "--credit-usd", "12.50")
	if err != nil || !strings.HasPrefix(out, "acct_") || !strings.Contains(out, "$12.50") {
		t.Fatalf("account create --credit-usd: %v %q", err, out)
	}
	ctx := context.Background()
	u, err := c.store().UserByEmail(ctx, "ops@example.com")
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.store().WalletOf(ctx, u.AccountID)
	if err != nil || w.BalanceMicros != 12_500_000 {
		t.Fatalf("wallet %+v %v, want a balance of $12.50", w, err)
	}
	entries, err := c.store().LedgerPage(ctx, u.AccountID, "", 10)
	if err != nil || len(entries) != 1 || entries[0].AmountMicros != 12_500_000 {
		t.Fatalf("ledger %+v %v, want one entry of $12.50", entries, err)
	}
	if err := c.store().LedgerInvariant(ctx, u.AccountID); err != nil {
		t.Fatal(err)
	}
}

// TestAdminVerbsAreAudited: each admin verb that changes an account is
// in its audit log as the admin CLI's, with no member, address or request;
// a refused debit records nothing.
func TestAdminVerbsAreAudited(t *testing.T) {
	c := newCLI(t)
	steps := [][]string{
		{"account", "create", "--email", "ops@example.com", "--password", "operator password", "--credit-usd", "5"},
		{"credit", "--email", "ops@example.com", "--usd", "-1.50", "--memo", "refund of a test"},
		{"credit", "--email", "ops@example.com", "--usd", "-100", "--memo", "too much"},
		{"key", "create", "--email", "ops@example.com", "--name", "batch"},
	}
	for i, args := range steps {
		_, stderr, err := c.run(append([]string{"admin"}, args...)...)
		if (err != nil) != (i == 2) {
			t.Fatalf("admin %v: %v %s", args, err, stderr)
		}
	}
	ctx := context.Background()
	u, err := c.store().UserByEmail(ctx, "ops@example.com")
	if err != nil {
		t.Fatal(err)
	}
	log, _, err := c.store().AuditLog(ctx, u.AccountID, models.AuditFilter{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range log {
		if e.Actor != models.ActorAdminCLI || e.ActorUserID != nil || e.IP != "" || e.RequestID != "" {
			t.Errorf("%s by %q (%v) from %q in %q", e.Action, e.Actor, e.ActorUserID, e.IP, e.RequestID)
		}
		got = append(got, e.Action+" "+e.TargetLabel+" "+e.Before+" → "+e.After)
	}
	want := []string{
		"key.created batch  → " + strings.Split(got[0], " → ")[1],
		"billing.balance_adjusted refund of a test $5.00 → $3.50",
		"billing.balance_adjusted Opening credit $0.00 → $5.00",
		"account.created ops@example.com  → ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || !strings.HasPrefix(strings.Split(got[0], " → ")[1], "sk-tt-") {
		t.Fatalf("audit log:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestServeListensOnLoopbackByDefault: an open sign-up page on every
// interface of a laptop is a surprise; all interfaces are one flag away.
func TestServeListensOnLoopbackByDefault(t *testing.T) {
	t.Setenv("TT_ADDR", "")
	var cfg Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	serveFlags(fs, &cfg)
	if err := fs.Parse(nil); err != nil || cfg.Addr != "127.0.0.1:8080" {
		t.Fatalf("default listen address %q (%v), want 127.0.0.1:8080", cfg.Addr, err)
	}
	if err := fs.Parse([]string{"--addr", ":8080"}); err != nil || cfg.Addr != ":8080" {
		t.Fatalf("--addr :8080 gave %q (%v)", cfg.Addr, err)
	}
	t.Setenv("TT_ADDR", "0.0.0.0:9999")
	fs = flag.NewFlagSet("serve", flag.ContinueOnError)
	serveFlags(fs, &cfg)
	if err := fs.Parse(nil); err != nil || cfg.Addr != "0.0.0.0:9999" {
		t.Fatalf("TT_ADDR gave %q (%v)", cfg.Addr, err)
	}
}

// TestServeDefaultsAreTheAppsOwn: a server started with no flags runs with
// the same durations as an App whose fields were left zero (the tests'
// servers), so a default changed in one place cannot leave the other behind.
func TestServeDefaultsAreTheAppsOwn(t *testing.T) {
	for _, env := range []string{"TT_UPSTREAM_TIMEOUT", "TT_HOLD_TTL", "TT_TASK_TTL", "TT_STREAM_MAX", "TT_BODY_TIMEOUT"} {
		t.Setenv(env, "")
	}
	var cfg Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	serveFlags(fs, &cfg)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	app := testenv.NewServer(t).App
	for _, d := range []struct {
		name      string
		flag, app time.Duration
	}{
		{"upstream timeout", cfg.UpstreamTimeout, app.UpstreamTimeout},
		{"hold TTL", cfg.HoldTTL, app.HoldTTL},
		{"task TTL", cfg.TaskTTL, app.TaskTTL},
		{"stream max", cfg.StreamMax, app.StreamMax},
		{"body timeout", cfg.BodyTimeout, app.BodyTimeout},
	} {
		if d.flag != d.app || d.flag == 0 {
			t.Errorf("%s: serve's default %s, an App's %s", d.name, d.flag, d.app)
		}
	}
}

// TestServeMakesTheRequestLogsMonthsAhead starts serve on a database whose
// partitions of the next two months are missing (as after a server was
// stopped for months): on PostgreSQL its first round makes them and says
// so; on SQLite, whose log is one table, no such line appears.
func TestServeMakesTheRequestLogsMonthsAhead(t *testing.T) {
	c := newCLI(t)
	if _, _, err := c.run("migrate"); err != nil {
		t.Fatal(err)
	}
	store := c.store()
	db := store.DB()
	ahead := migrations.AheadMonths(time.Now())
	if db.Postgres {
		// No product path removes a partition ahead; they are dropped by
		// hand, over a connection of the test's own.
		conn, err := sql.Open("pgx", os.Getenv("DATABASE_URL"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, p := range ahead[1:] {
			if _, err := conn.Exec("DROP TABLE " + p.Name()); err != nil {
				t.Fatal(err)
			}
		}
	}
	log, err := c.serveUntil(func(log string) bool {
		return strings.Contains(log, "TT Console listening") &&
			(!db.Postgres || strings.Contains(log, "request log partitions made"))
	})
	if err != nil {
		t.Fatalf("serve stopped with %v: %s", err, log)
	}
	if !db.Postgres {
		if strings.Contains(log, "request log partitions") {
			t.Fatalf("SQLite: serve speaks of partitions: %s", log)
		}
		return
	}
	for _, p := range ahead[1:] {
		if !strings.Contains(log, p.Name()) {
			t.Errorf("the start-up log does not name %s: %s", p.Name(), log)
		}
	}
	// Nothing is left to make: serve made them.
	if made, err := store.EnsureRequestPartitions(context.Background(), time.Now()); err != nil || len(made) != 0 {
		t.Errorf("after serve's first round, %v still had to be made (%v)", made, err)
	}
}

// TestAdminPrintsMoneyAsTheConsoleDoes: the command line shows money in
// the console's one format — cents for whole cents, every digit below a
// cent, one precision for an amount and the balance it left — not "$12.5".
func TestAdminPrintsMoneyAsTheConsoleDoes(t *testing.T) {
	c := newCLI(t)
	out, _, err := c.run("admin", "account", "create", "--email", "ops@example.com", "--password", "operator password", "--credit-usd", "12.5")
	if err != nil || !strings.HasSuffix(strings.TrimSpace(out), "balance $12.50") {
		t.Fatalf("account create --credit-usd 12.5 printed %q (%v), want the balance as $12.50", out, err)
	}
	for _, tc := range []struct{ usd, want string }{
		{"12.5", " +$12.50 balance $25.00"},
		{"-0.0002", " -$0.0002 balance $24.9998"},
		{"-3", " -$3.0000 balance $21.9998"},
	} {
		out, _, err := c.run("admin", "credit", "--email", "ops@example.com", "--usd", tc.usd, "--memo", "support")
		if err != nil || !strings.HasPrefix(out, "led_") || !strings.HasSuffix(strings.TrimSpace(out), strings.TrimSpace(tc.want)) {
			t.Errorf("admin credit --usd %s printed %q (%v), want it to end %q", tc.usd, out, err, tc.want)
		}
	}
}
