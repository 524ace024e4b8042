package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"ttconsole/internal/testenv"
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
		n := 1
		if args[0] == "admin" {
			n = 3
		}
		args = append(append(append([]string{}, args[:n]...), "--db", c.path), args[n:]...)
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
	_, stderr, err := c.run("migrate")
	if err != nil || !strings.Contains(stderr, "applied 1 migration") {
		t.Fatalf("migrate: %v %q", err, stderr)
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
	if _, err := c.store().Authenticate(context.Background(), "ops@example.com", "operator password"); err != nil {
		t.Fatalf("the created account cannot log in: %v", err)
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
