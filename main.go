// Command ttconsole runs TT Console: the customer console and the API
// gateway of the TT platform, plus its operator commands.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gorilla/sessions"
	"github.com/redis/go-redis/v9"

	"ttconsole/handlers"
	"ttconsole/internal/mailer"
	"ttconsole/internal/payments"
	"ttconsole/internal/ratelimit"
	"ttconsole/models"
	"ttconsole/upstream"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(os.Stderr, "ttconsole:", line)
		}
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// errUsage marks a mistake on the command line (exit status 2); see usagef.
var errUsage = errors.New("usage error")

// usageError is a mistake on the command line, told in its own words.
type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == errUsage }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// errHelp ends a command whose --help was printed: it succeeds.
var errHelp = errors.New("help printed")

const usage = `TT Console: the customer console and API gateway of the TT platform.

Usage:
  ttconsole [serve] [--addr 127.0.0.1:8080] [--db ./ttconsole.db]   serve the console and the gateway
  ttconsole migrate [--db ./ttconsole.db]                           apply migrations and exit
  ttconsole upstream-sim [--addr :9000]                             the simulated upstream as its own server
  ttconsole admin account create --email E --password P [--credit-usd N]
                                                   create an account, its owner and its wallet
  ttconsole admin credit --email E --usd N --memo TEXT
                                                   a ledger adjustment (negative allowed)
  ttconsole admin key create --email E --name N [--models a,b] [--ips LIST] [--monthly-limit-usd N] [--rpm N]
                                                   create an API key; prints its secret alone on stdout
  ttconsole admin seed --email E [--requests N] [--days N]
                                                   a realistic request history (demos, benchmarks)
  ttconsole help                                   this text

'ttconsole COMMAND --help' lists a command's flags. Every command that opens the database takes
--db (TT_DB) and uses PostgreSQL when DATABASE_URL is set. The other settings (UPSTREAM_URL,
REDIS_URL, TT_PAYMENTS, ...) are environment variables: see README.md.
`

// isHelp reports whether a word asks for help.
func isHelp(arg string) bool {
	return arg == "help" || arg == "-h" || arg == "--help" || arg == "-help"
}

// run dispatches the subcommand in args. Asking for help succeeds.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, stdout, stderr)
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprint(stdout, usage)
		return nil
	}
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, stdout, stderr)
	case "migrate":
		return migrate(ctx, args, stdout, stderr)
	case "upstream-sim":
		return upstreamSim(ctx, args, stdout, stderr)
	case "admin":
		return admin(ctx, args, stdout, stderr)
	}
	fmt.Fprint(stderr, usage)
	return usagef("unknown command %q", cmd)
}

// command is one verb's flags and the synopsis its --help prints above them.
type command struct {
	*flag.FlagSet
	synopsis string
	// check, when set, validates the flags once parsed, before the
	// command opens anything: a mistake on the command line changes nothing.
	check func() error
}

func newCommand(name, synopsis string) *command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// The flag package's own messages and help (single dashes, on stderr,
	// "help requested" as an error) are replaced by parse's.
	fs.SetOutput(io.Discard)
	return &command{FlagSet: fs, synopsis: synopsis}
}

// flagDashes writes the flag package's "-name" the way the usage does.
var flagDashes = strings.NewReplacer("not defined: -", "not defined: --", "needs an argument: -", "needs an argument: --",
	"for flag -", "for flag --")

// parse reads the flags in args. --help prints the command's usage on
// stdout and ends the command successfully (errHelp).
func (c *command) parse(args []string, stdout io.Writer) error {
	if err := c.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.help(stdout)
			return errHelp
		}
		return usagef("%s (see ttconsole %s --help)", flagDashes.Replace(err.Error()), c.Name())
	}
	if c.NArg() > 0 {
		return usagef("unexpected argument %q (see ttconsole %s --help)", c.Arg(0), c.Name())
	}
	return nil
}

// help prints the synopsis and every flag, with its environment variable
// and default where it has them.
func (c *command) help(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nFlags:\n", c.synopsis)
	c.VisitAll(func(f *flag.Flag) {
		kind, text := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  --%s %s\n      %s", f.Name, kind, text)
		if f.DefValue != "" && f.DefValue != "0" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// required answers the first of the named flags left empty.
func (c *command) required(names ...string) error {
	for _, n := range names {
		if strings.TrimSpace(c.Lookup(n).Value.String()) == "" {
			return usagef("--%s is required (see ttconsole %s --help)", n, c.Name())
		}
	}
	return nil
}

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

// openDB opens and migrates the database the configuration names.
func openDB(ctx context.Context, cfg *Config) (*models.DB, error) {
	db, err := models.Open(cfg.DBPath, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg Config
	c := newCommand("migrate", "Usage: ttconsole migrate [--db FILE]\n\nApply the pending migrations and exit; serve applies them at start-up too.")
	configFlags(c.FlagSet, &cfg)
	if err := c.parse(args, stdout); err != nil {
		return err
	}
	if err := cfg.finish(); err != nil {
		return err
	}
	db, err := models.Open(cfg.DBPath, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	start := time.Now()
	n, err := db.Migrate(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "applied %d migration(s) in %s\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg Config
	c := newCommand("serve", "Usage: ttconsole [serve] [flags]\n\n"+
		"Serve the console and the gateway. --addr :8080 serves on every interface.\n"+
		"The other settings are environment variables: see README.md.")
	serveFlags(c.FlagSet, &cfg)
	if err := c.parse(args, stdout); err != nil {
		return err
	}
	if err := cfg.finish(); err != nil {
		return err
	}
	log := newLogger(cfg.LogFormat, stderr)

	db, err := openDB(ctx, &cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	store := models.NewStore(db)

	key := cfg.SessionKey
	if key == nil {
		if key, err = store.SecretSetting(ctx, "session_key", 32); err != nil {
			return fmt.Errorf("session key: %w", err)
		}
	}
	// Listening first makes the address known: links in mail start with
	// it unless TT_BASE_URL says otherwise.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	if cfg.BaseURL == "" {
		cfg.BaseURL = "http://" + browseAddr(ln.Addr())
	}
	up := upstream.NewInProcess(upstream.NewSimulator(), cfg.UpstreamTimeout)
	if cfg.UpstreamURL != "" {
		up = upstream.NewHTTP(cfg.UpstreamURL, cfg.UpstreamTimeout)
	}
	app := &handlers.App{
		Config: handlers.Config{TrustedProxies: cfg.TrustedProxies, SecureCookies: cfg.SecureCookies,
			BaseURL: cfg.BaseURL, MailFrom: cmp.Or(cfg.MailFrom, mailer.DefaultFrom)},
		Store:           store,
		Log:             log,
		Cookies:         sessions.NewCookieStore(key),
		Upstream:        up,
		UpstreamTimeout: cfg.UpstreamTimeout,
		HoldTTL:         cfg.HoldTTL,
		TaskTTL:         cfg.TaskTTL,
		StreamMax:       cfg.StreamMax,
		BodyTimeout:     cfg.BodyTimeout,
	}
	// Rate limits: shared by every instance through Redis when configured.
	switch {
	case cfg.RedisURL != "":
		rdb, err := ratelimit.NewRedis(cfg.RedisURL)
		if err != nil {
			return err
		}
		defer rdb.Close()
		app.RateLimitRedis = rdb
		// The client's own complaints (a failed dial on every try) would
		// repeat the limiter's once-a-minute line; keep them at debug.
		redis.SetLogger(redisLog{log})
	case cfg.DatabaseURL != "":
		log.Warn("REDIS_URL is not set: API key rate limits are counted per instance; " +
			"with several instances behind a load balancer, a key gets its limit on each one. Set REDIS_URL to share them.")
	}
	// Billing and payments: Stripe, or the test provider (nil), as
	// cfg.choosePayments decided.
	app.Config.StripeWebhookSecrets = cfg.StripeWebhookSecrets
	if cfg.Payments == payments.ProviderStripe {
		app.Payments = payments.NewStripeProvider(cfg.StripeSecretKey)
	} else {
		log.Warn("TEST MODE: recharges are free: the test payment provider credits any amount and no card is charged. " +
			"Set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET to take real payments.")
	}
	// Mail: through the SMTP server, or into the log.
	if cfg.SMTP != nil {
		app.Mailer = &mailer.SMTP{Config: *cfg.SMTP, From: app.Config.MailFrom}
		if cfg.MailFrom == "" {
			log.Warn("TT_MAIL_FROM is not set: mail is sent from " + mailer.DefaultFrom + ", which mail servers may refuse")
		}
	} else {
		log.Warn("SMTP_URL is not set: mail (password resets, email confirmations) is written to this log, not sent")
	}
	e, err := app.NewServer()
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	defer app.Close()
	if n, err := app.ResumeTasks(ctx); err != nil {
		return fmt.Errorf("resume tasks: %w", err)
	} else if n > 0 {
		log.Info("resumed running tasks", "count", n)
	}
	go reapHolds(ctx, store, log, time.Minute, cfg.RetentionDays)

	where := "SQLite " + cfg.DBPath
	if cfg.DatabaseURL != "" {
		where = "PostgreSQL"
	}
	if cfg.RedisURL != "" {
		where += ", rate limits shared in Redis"
	}
	upstreamName := "the built-in simulated upstream"
	if cfg.UpstreamURL != "" {
		upstreamName = cfg.UpstreamURL
	}
	fmt.Fprintf(stderr, "TT Console listening on %s (%s, upstream: %s) — open http://%s/\n",
		ln.Addr(), where, upstreamName, browseAddr(ln.Addr()))

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return err
	}
	return nil
}

// reapHolds expires overdue tasks and releases expired holds at start-up
// and then every interval, so a crash or a lost call never keeps money held.
// With a retention of days > 0 it also purges the older request log; kept
// bodies past their own retention always go, and so do the rows of mailed
// links a while after they expired. On PostgreSQL it first makes the
// request log's partitions ahead.
func reapHolds(ctx context.Context, store *models.Store, log *slog.Logger, every time.Duration, retentionDays int) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if made, err := store.EnsureRequestPartitions(ctx, time.Now()); err != nil && ctx.Err() == nil {
			// Calls go on meanwhile: a row without its month's partition
			// goes to the default one.
			log.Warn("request log partitions: not made yet, trying again next round", "err", err.Error())
		} else if len(made) > 0 {
			log.Info("request log partitions made", "partitions", strings.Join(made, ", "))
		}
		if n, err := store.ExpireTasks(ctx, time.Now()); err != nil && ctx.Err() == nil {
			log.Error("expire tasks", "err", err.Error())
		} else if n > 0 {
			log.Info("expired tasks released", "count", n)
		}
		if n, err := store.ExpireHolds(ctx, time.Now()); err != nil && ctx.Err() == nil {
			log.Error("expire holds", "err", err.Error())
		} else if n > 0 {
			log.Info("expired holds released", "count", n)
		}
		if retentionDays > 0 {
			purgeRequestLog(ctx, store, log, retentionDays, every/2)
		}
		purgeKeptBodies(ctx, store, log, every/4)
		if n, err := store.PurgeUserTokens(ctx, time.Now().Add(-models.TokenKeep)); err != nil && ctx.Err() == nil {
			log.Error("purge expired links", "err", err.Error())
		} else if n > 0 {
			log.Info("purged expired links", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// redisLog sends the Redis client's own log lines to slog at debug level.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// purgeRequestLog deletes requests older than the retention, in small
// batches, for at most budget, so the reaper's other work is not held up
// and a large backlog is worked off over several rounds.
func purgeRequestLog(ctx context.Context, store *models.Store, log *slog.Logger, days int, budget time.Duration) {
	pctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	start := time.Now()
	n, err := store.PurgeRequests(pctx, start.AddDate(0, 0, -days), models.RetentionBatch, 50*time.Millisecond)
	if err != nil && pctx.Err() == nil {
		log.Error("purge request log", "err", err.Error(), "purged", n)
	}
	if n > 0 {
		took := time.Since(start)
		log.Info("purged old request log", "requests", n, "older_than_days", days,
			"took", took.Round(time.Millisecond).String(), "per_second", int(float64(n)/max(took.Seconds(), 0.001)))
	}
}

// purgeKeptBodies deletes the request and response bodies past their
// key's retention, in small batches, for at most budget.
func purgeKeptBodies(ctx context.Context, store *models.Store, log *slog.Logger, budget time.Duration) {
	pctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	n, err := store.PurgeBodies(pctx, time.Now(), models.RetentionBatch, 20*time.Millisecond)
	if err != nil && pctx.Err() == nil {
		log.Error("purge kept bodies", "err", err.Error(), "purged", n)
	}
	if n > 0 {
		log.Info("purged kept bodies past their retention", "calls", n)
	}
}

func upstreamSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("upstream-sim", "Usage: ttconsole upstream-sim [--addr :9000]\n\n"+
		"The simulated upstream as its own server: point a gateway at it with UPSTREAM_URL.")
	addr := c.String("addr", envOr("TT_SIM_ADDR", ":9000"), "listen address (TT_SIM_ADDR)")
	if err := c.parse(args, stdout); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: upstream.NewSimulator(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stderr, "simulated upstream listening on %s — set UPSTREAM_URL=http://%s\n", ln.Addr(), browseAddr(ln.Addr()))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutCtx)
}

// browseAddr turns a listen address into one a browser can open.
func browseAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || tcp.IP.IsUnspecified() {
		if ok {
			return fmt.Sprintf("localhost:%d", tcp.Port)
		}
	}
	return a.String()
}
