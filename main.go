// Command ttconsole runs TT Console: the customer console and the API
// gateway of the TT platform, plus its operator commands.
package main

import (
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
	"syscall"
	"time"

	"github.com/gorilla/sessions"
	"github.com/redis/go-redis/v9"

	"ttconsole/handlers"
	"ttconsole/models"
	"ttconsole/upstream"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ttconsole:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage error")

const usage = `ttconsole — TT Console and API gateway

Usage:
  ttconsole [serve] [--addr :8080] [--db ./ttconsole.db]   the console and the gateway
  ttconsole migrate [--db ./ttconsole.db]                  apply migrations and exit
  ttconsole upstream-sim [--addr :9000]                    the simulated upstream as its own server
  ttconsole admin account create --email E --password P
  ttconsole admin credit --email E --usd N --memo TEXT
  ttconsole admin key create --email E --name N [--models a,b] [--ips LIST] [--monthly-limit-usd N] [--rpm N]
  ttconsole admin seed --email E --requests N

Environment: DATABASE_URL, UPSTREAM_URL, TT_TRUSTED_PROXIES, REDIS_URL and more: see README.md.
`

// run dispatches the subcommand in args.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
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
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
}

func parseFlags(fs *flag.FlagSet, args []string, cfg *Config) error {
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return cfg.finish()
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
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFlags(fs, &cfg)
	if err := parseFlags(fs, args, &cfg); err != nil {
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
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	serveFlags(fs, &cfg)
	if err := parseFlags(fs, args, &cfg); err != nil {
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
	up := upstream.NewInProcess(upstream.NewSimulator(), cfg.UpstreamTimeout)
	if cfg.UpstreamURL != "" {
		up = upstream.NewHTTP(cfg.UpstreamURL, cfg.UpstreamTimeout)
	}
	app := &handlers.App{
		Config:          handlers.Config{TrustedProxies: cfg.TrustedProxies, SecureCookies: cfg.SecureCookies},
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
		rdb, err := handlers.NewRateLimitRedis(cfg.RedisURL)
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
	if cfg.Payments == PaymentsStripe {
		app.Payments = handlers.NewStripeProvider(cfg.StripeSecretKey)
	} else {
		log.Warn("TEST MODE: recharges are free: the test payment provider credits any amount and no card is charged. " +
			"Set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET to take real payments.")
	}
	e, err := app.NewServer()
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
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
// With a retention of days > 0 it also purges the older request log.
func reapHolds(ctx context.Context, store *models.Store, log *slog.Logger, every time.Duration, retentionDays int) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
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

func upstreamSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("upstream-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", envOr("TT_SIM_ADDR", ":9000"), "listen address (TT_SIM_ADDR)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
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
