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
`

func admin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, adminUsage)
		return fmt.Errorf("%w: admin needs a command", errUsage)
	}
	verb := strings.Join(args[:2], " ")
	switch verb {
	case "account create":
		return adminAccountCreate(ctx, args[2:], stdout, stderr)
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
