package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"ttconsole/models"
)

const adminUsage = `ttconsole admin — operator commands

  ttconsole admin account create --email E --password P
  ttconsole admin key create --email E --name N [--models a,b] [--ips 203.0.113.7,10.0.0.0/8]
                             [--monthly-limit-usd N] [--rpm N]   prints the new secret alone on stdout
  ttconsole admin credit --email E --usd N --memo TEXT   (ledger adjustment; negative allowed)
`

func admin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
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
