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

	"ttconsole/handlers"
	"ttconsole/models"
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
  ttconsole [serve] [--addr :8080] [--db ./ttconsole.db]
  ttconsole migrate [--db ./ttconsole.db]
  ttconsole admin account create --email E --password P
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
	app := &handlers.App{
		Config:  handlers.Config{TrustedProxies: cfg.TrustedProxies, SecureCookies: cfg.SecureCookies},
		Store:   store,
		Log:     log,
		Cookies: sessions.NewCookieStore(key),
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
	where := "SQLite " + cfg.DBPath
	if cfg.DatabaseURL != "" {
		where = "PostgreSQL"
	}
	fmt.Fprintf(stderr, "TT Console listening on %s (%s) — open http://%s/\n", ln.Addr(), where, browseAddr(ln.Addr()))

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
