package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"ttconsole/models"
)

const adminUsage = `ttconsole admin — operator commands

  ttconsole admin account create --email E --password P
  ttconsole admin key create --email E --name N [--models a,b] [--ips 203.0.113.7,10.0.0.0/8]
                             [--monthly-limit-usd N] [--rpm N]   prints the new secret alone on stdout
  ttconsole admin credit --email E --usd N --memo TEXT   (ledger adjustment; negative allowed)
  ttconsole admin seed --email E --requests N            a realistic request history, fast (demos, benchmarks)
`

func admin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) >= 1 && args[0] == "seed" {
		return adminSeed(ctx, args[1:], stdout, stderr)
	}
	if len(args) >= 2 && args[0] == "credit" {
		return adminCredit(ctx, args[1:], stdout, stderr)
	}
	if len(args) < 2 {
		fmt.Fprint(stderr, adminUsage)
		return fmt.Errorf("%w: admin needs a command", errUsage)
	}
	verb := strings.Join(args[:2], " ")
	switch verb {
	case "account create":
		return adminAccountCreate(ctx, args[2:], stdout, stderr)
	case "key create":
		return adminKeyCreate(ctx, args[2:], stdout, stderr)
	}
	fmt.Fprint(stderr, adminUsage)
	return fmt.Errorf("%w: unknown admin command %q", errUsage, verb)
}

// adminStore parses the flags common to admin verbs and opens the database.
func adminStore(ctx context.Context, fs *flag.FlagSet, args []string) (*models.Store, func(), error) {
	var cfg Config
	configFlags(fs, &cfg)
	if err := parseFlags(fs, args, &cfg); err != nil {
		return nil, nil, err
	}
	db, err := openDB(ctx, &cfg)
	if err != nil {
		return nil, nil, err
	}
	return models.NewStore(db), func() { db.Close() }, nil
}

func adminAccountCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("admin account create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "email of the account's owner")
	password := fs.String("password", "", "password (at least 10 characters)")
	store, done, err := adminStore(ctx, fs, args)
	if err != nil {
		return err
	}
	defer done()
	u, err := store.CreateAccount(ctx, *email, *password)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s\n", u.AccountID, u.Email)
	return nil
}

// adminCredit adds a ledger adjustment to an account's wallet: support
// credits, corrections (negative), opening balances.
func adminCredit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("admin credit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "email of a user of the account")
	usd := fs.String("usd", "", "amount in USD, such as 25 or -3.50")
	memo := fs.String("memo", "", "why: shown in the account's ledger")
	store, done, err := adminStore(ctx, fs, args)
	if err != nil {
		return err
	}
	defer done()
	amount, ok := models.ParseUSD(*usd, true)
	if !ok || amount == 0 {
		return fmt.Errorf("%w: --usd must be a non-zero amount such as 25 or -3.50, not %q", errUsage, *usd)
	}
	if strings.TrimSpace(*memo) == "" {
		return fmt.Errorf("%w: --memo is required: say why the balance changes", errUsage)
	}
	u, err := store.UserByEmail(ctx, *email)
	if err != nil {
		return err
	}
	e, err := store.Credit(ctx, u.AccountID, amount, models.LedgerAdjustment, strings.TrimSpace(*memo), models.LedgerRef{})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s balance %s\n", e.ID, models.FormatUSDExact(amount), models.FormatUSDExact(e.BalanceAfterMicros))
	return nil
}

// adminKeyCreate makes an API key for the account of a user and prints
// its secret alone on stdout, so scripts can capture it. An operator may
// set a rate limit above the account's maximum.
func adminKeyCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("admin key create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "email of a user of the account")
	name := fs.String("name", "", "name of the key")
	modelList := fs.String("models", "", "comma-separated model ids the key may call (default: all models)")
	ips := fs.String("ips", "", "comma-separated source IPs and CIDRs allowed (default: any)")
	limit := fs.String("monthly-limit-usd", "", "monthly limit in USD (default: none)")
	rpm := fs.String("rpm", "", "requests per minute (default 60; may exceed the account's maximum)")
	store, done, err := adminStore(ctx, fs, args)
	if err != nil {
		return err
	}
	defer done()
	u, err := store.UserByEmail(ctx, *email)
	if err != nil {
		return err
	}
	_, secret, err := store.CreateAPIKey(ctx, u.AccountID, models.AdminCLI, models.KeyInput{
		Name: *name, Models: []string{*modelList}, AllowedIPs: *ips, MonthlyLimitUSD: *limit, RPM: *rpm,
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, secret)
	return nil
}

// adminSeed writes a realistic request history for an account, over the
// last 30 days, spread over its keys (three demo keys are made when it has
// none). Progress goes to stderr while it runs in a terminal; a summary
// line with the rate ends it.
func adminSeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("admin seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "email of the account to seed")
	n := fs.Int("requests", 10_000, "how many requests to write")
	days := fs.Int("days", 30, "spread them over this many days before now")
	store, done, err := adminStore(ctx, fs, args)
	if err != nil {
		return err
	}
	defer done()
	if *n < 1 || *days < 1 {
		return fmt.Errorf("%w: --requests and --days must be at least 1", errUsage)
	}
	u, err := store.UserByEmail(ctx, *email)
	if err != nil {
		return err
	}
	keys, err := store.APIKeysOf(ctx, u.AccountID)
	if err != nil {
		return err
	}
	var keyIDs []string
	for _, k := range keys {
		keyIDs = append(keyIDs, k.ID)
	}
	if len(keyIDs) == 0 {
		for _, name := range []string{"production", "staging", "batch jobs"} {
			k, _, err := store.CreateAPIKey(ctx, u.AccountID, models.AdminCLI, models.KeyInput{Name: name})
			if err != nil {
				return err
			}
			keyIDs = append(keyIDs, k.ID)
		}
		fmt.Fprintf(stderr, "made 3 demo keys for %s (their secrets are not shown: create your own to call the API)\n", u.Email)
	}
	// Most of what a seed allocates is the database driver's argument
	// lists, hundreds of KB a statement, around a live heap of a few MB:
	// at Go's default the collector ran every few statements. It runs a
	// quarter as often while the seed does (the process's memory grows by
	// about 80 MB).
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	tty := isTerminal(stderr)
	start := time.Now()
	written, err := store.SeedRequests(ctx, u.AccountID, models.SeedOptions{
		Requests: *n, Span: time.Duration(*days) * 24 * time.Hour, KeyIDs: keyIDs,
		Progress: func(done int) {
			if tty {
				el := time.Since(start).Seconds()
				fmt.Fprintf(stderr, "\rseeding: %d/%d requests (%d%%), %.0f rows/s   ", done, *n, done*100 / *n, float64(done)/el)
			}
		},
	})
	if tty {
		fmt.Fprint(stderr, "\n")
	}
	el := time.Since(start)
	fmt.Fprintf(stderr, "seeded %d requests for %s in %s (%.0f rows/s)\n", written, u.Email, el.Round(time.Millisecond),
		float64(written)/el.Seconds())
	return err
}

// isTerminal reports whether w is a terminal, where progress is worth drawing.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
