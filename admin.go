package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"ttconsole/internal/seed"
	"ttconsole/models"
)

const adminUsage = `ttconsole admin: operator commands

Usage:
  ttconsole admin account create --email E --password P [--credit-usd N]
                                   create an account, its owner and its wallet (opened with N dollars)
  ttconsole admin credit --email E --usd N --memo TEXT
                                   a ledger adjustment (negative allowed); prints the entry and the balance
  ttconsole admin key create --email E --name N [--models a,b] [--ips 203.0.113.7,10.0.0.0/8]
                             [--monthly-limit-usd N] [--rpm N] [--keep-bodies-days N]
                                   create an API key; prints its secret alone on stdout
  ttconsole admin seed --email E [--requests N] [--days N]
                                   a realistic request history, fast (demos, benchmarks)

'ttconsole admin VERB --help' lists a verb's flags. Each takes --db (TT_DB) and uses PostgreSQL when
DATABASE_URL is set, so it works beside a running server.
`

// adminVerbs are the admin commands by the words that name them.
var adminVerbs = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error{
	"account create": adminAccountCreate,
	"credit":         adminCredit,
	"key create":     adminKeyCreate,
	"seed":           adminSeed,
}

func admin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprint(stdout, adminUsage)
		return nil
	}
	for n := 1; n <= 2 && n <= len(args); n++ {
		if verb, ok := adminVerbs[strings.Join(args[:n], " ")]; ok {
			return verb(ctx, args[n:], stdout, stderr)
		}
	}
	if len(args) == 2 && isHelp(args[1]) { // admin key --help
		fmt.Fprint(stdout, adminUsage)
		return nil
	}
	fmt.Fprint(stderr, adminUsage)
	if len(args) == 0 {
		return usagef("admin needs a command")
	}
	words := args[:min(2, len(args))]
	if len(words) == 2 && strings.HasPrefix(words[1], "-") {
		words = words[:1]
	}
	return usagef("unknown admin command %q", strings.Join(words, " "))
}

// adminStore parses an admin verb's flags, checks that the required ones
// were given, and opens the database.
func adminStore(ctx context.Context, c *command, args []string, stdout io.Writer, required ...string) (*models.Store, func(), error) {
	var cfg Config
	configFlags(c.FlagSet, &cfg)
	if err := c.parse(args, stdout); err != nil {
		return nil, nil, err
	}
	if err := c.required(required...); err != nil {
		return nil, nil, err
	}
	if c.check != nil {
		if err := c.check(); err != nil {
			return nil, nil, err
		}
	}
	if err := cfg.finish(); err != nil {
		return nil, nil, err
	}
	db, err := openDB(ctx, &cfg)
	if err != nil {
		return nil, nil, err
	}
	return models.NewStore(db), func() { db.Close() }, nil
}

// flagErrors tells a form's field messages by the flags that carry them:
// a web page's "Please correct the highlighted fields." means nothing on a
// command line. A field is named as its flag (allowed_ips → --ips).
func flagErrors(err error, flagOf map[string]string) error {
	var e *models.Error
	if !errors.As(err, &e) || len(e.Fields) == 0 {
		return err
	}
	fields := make([]string, 0, len(e.Fields))
	for f := range e.Fields {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	lines := make([]string, 0, len(fields))
	for _, f := range fields {
		name, ok := flagOf[f]
		if !ok {
			name = strings.ReplaceAll(f, "_", "-")
		}
		lines = append(lines, "--"+name+": "+e.Fields[f])
	}
	return usagef("%s", strings.Join(lines, "\n"))
}

func adminAccountCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("admin account create", "Usage: ttconsole admin account create --email E --password P [--credit-usd N]\n\n"+
		"Create an account, its owner and its wallet; print the account id and the email.")
	email := c.String("email", "", "email of the account's owner")
	password := c.String("password", "", "password (at least 10 characters)")
	creditUSD := c.String("credit-usd", "", "open the wallet with this many dollars, as one ledger adjustment")
	var credit int64
	c.check = func() error {
		if *creditUSD == "" {
			return nil
		}
		var ok bool
		if credit, ok = models.ParseUSD(*creditUSD, false); !ok || credit <= 0 {
			return usagef("--credit-usd must be a positive amount such as 25 or 12.50, not %q", *creditUSD)
		}
		return nil
	}
	store, done, err := adminStore(ctx, c, args, stdout, "email", "password")
	if err != nil {
		return err
	}
	defer done()
	u, err := store.CreateAccountBy(ctx, *email, *password, models.AdminCLI)
	if models.ErrorCode(err) == models.ECONFLICT {
		return fmt.Errorf("An account with the email %s already exists.", models.NormalizeEmail(*email))
	}
	if err != nil {
		return flagErrors(err, nil)
	}
	// The operator vouches for the address: no confirmation mail, no banner.
	if err := store.MarkEmailVerified(ctx, u.ID); err != nil {
		return err
	}
	if credit == 0 {
		fmt.Fprintf(stdout, "%s %s\n", u.AccountID, u.Email)
		return nil
	}
	e, err := store.Adjust(ctx, u.AccountID, credit, "Opening credit", models.AdminCLI)
	if err != nil {
		return fmt.Errorf("the account %s was created but not credited (%w): run ttconsole admin credit --email %s --usd %s --memo TEXT",
			u.AccountID, err, u.Email, *creditUSD)
	}
	fmt.Fprintf(stdout, "%s %s balance %s\n", u.AccountID, u.Email, models.FormatUSD(e.BalanceAfterMicros))
	return nil
}

// adminCredit adds a ledger adjustment to an account's wallet: support
// credits, corrections (negative), opening balances.
func adminCredit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("admin credit", "Usage: ttconsole admin credit --email E --usd N --memo TEXT\n\n"+
		"Add a ledger adjustment to the wallet of the account of E (negative allowed);\n"+
		"print the entry's id, its amount and the balance after it.")
	email := c.String("email", "", "email of a user of the account")
	usd := c.String("usd", "", "amount in USD, such as 25 or -3.50")
	memo := c.String("memo", "", "why: shown in the account's ledger")
	var amount int64
	c.check = func() error {
		var ok bool
		if amount, ok = models.ParseUSD(*usd, true); !ok || amount == 0 {
			return usagef("--usd must be a non-zero amount such as 25 or -3.50, not %q", *usd)
		}
		return nil
	}
	store, done, err := adminStore(ctx, c, args, stdout, "email", "usd", "memo")
	if err != nil {
		return err
	}
	defer done()
	u, err := store.UserByEmail(ctx, *email)
	if err != nil {
		return err
	}
	e, err := store.Adjust(ctx, u.AccountID, amount, strings.TrimSpace(*memo), models.AdminCLI)
	if err != nil {
		return flagErrors(err, nil)
	}
	// As the console's ledger shows it: a credit with its sign, the balance
	// after it at the same precision.
	m := models.FormatUSDs(amount, e.BalanceAfterMicros)
	if amount > 0 {
		m[0] = "+" + m[0]
	}
	fmt.Fprintf(stdout, "%s %s balance %s\n", e.ID, m[0], m[1])
	return nil
}

// adminKeyCreate makes an API key for the account of a user and prints
// its secret alone on stdout, so scripts can capture it. An operator may
// set a rate limit above the account's maximum.
func adminKeyCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("admin key create", "Usage: ttconsole admin key create --email E --name N [--models a,b] [--ips LIST]\n"+
		"                                  [--monthly-limit-usd N] [--rpm N] [--keep-bodies-days N]\n\n"+
		"Create an API key for the account of E and print its secret alone on stdout (it is shown once).")
	email := c.String("email", "", "email of a user of the account")
	name := c.String("name", "", "name of the key")
	modelList := c.String("models", "", "comma-separated model ids the key may call (default: all models)")
	ips := c.String("ips", "", "comma-separated source IPs and CIDRs allowed (default: any)")
	limit := c.String("monthly-limit-usd", "", "monthly limit in USD (default: none)")
	rpm := c.String("rpm", "", fmt.Sprintf("requests per minute (default %d; may exceed the account's maximum)", models.DefaultKeyRPM))
	keepDays := c.String("keep-bodies-days", "", fmt.Sprintf("keep each call's request and response bodies this many days, 1 to %d (default: not kept)", models.MaxKeepBodiesDays))
	store, done, err := adminStore(ctx, c, args, stdout, "email", "name")
	if err != nil {
		return err
	}
	defer done()
	u, err := store.UserByEmail(ctx, *email)
	if err != nil {
		return err
	}
	in := models.KeyInput{Name: *name, Models: []string{*modelList}, AllowedIPs: *ips, MonthlyLimitUSD: *limit, RPM: *rpm}
	if *keepDays != "" {
		in.KeepBodies, in.KeepBodiesDays = "on", *keepDays
	}
	_, secret, err := store.CreateAPIKey(ctx, u.AccountID, models.AdminCLI, in)
	if err != nil {
		return flagErrors(err, map[string]string{"allowed_ips": "ips"})
	}
	fmt.Fprintln(stdout, secret)
	return nil
}

// adminSeed writes a realistic request history for an account, over the
// last 30 days, spread over its keys (three demo keys are made when it has
// none). Progress goes to stderr while it runs in a terminal; a summary
// line with the rate ends it.
func adminSeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("admin seed", "Usage: ttconsole admin seed --email E [--requests N] [--days N]\n\n"+
		"Write a realistic request history for the account of E over its keys (three demo keys when it has\n"+
		"none). Request rows only: no money moves.")
	email := c.String("email", "", "email of the account to seed")
	n := c.Int("requests", 10_000, "how many requests to write")
	days := c.Int("days", 30, "spread them over this many days before now")
	c.check = func() error {
		if *n < 1 || *days < 1 {
			return usagef("--requests and --days must be at least 1")
		}
		return nil
	}
	store, done, err := adminStore(ctx, c, args, stdout, "email")
	if err != nil {
		return err
	}
	defer done()
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
	written, err := seed.Requests(ctx, store, u.AccountID, seed.Options{
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
