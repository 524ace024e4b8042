package testenv

import (
	"context"
	"testing"

	"ttconsole/models"
)

// Password is the password of the accounts FundedKey makes.
const Password = "long enough password"

// Account is an account made for a test, with one API key.
type Account struct {
	ID     string // the account's id
	Email  string
	Key    *models.APIKey
	Secret string // the key's secret, as a client sends it
}

// FundedKey makes an account for email (its password is Password, its
// address confirmed, as the admin CLI makes one) with balance
// micro-dollars in its wallet, an adjustment like the admin CLI's (0
// leaves the wallet empty), and one API key made from in.
func FundedKey(t testing.TB, s *models.Store, email string, balance int64, in models.KeyInput) *Account {
	t.Helper()
	ctx := context.Background()
	u, err := s.CreateAccount(ctx, email, Password)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.MarkEmailVerified(ctx, u.ID); err != nil { // as the admin CLI does
		t.Fatal(err)
	}
	if balance != 0 {
		if _, err := s.Credit(ctx, u.AccountID, balance, models.LedgerAdjustment, "test funds", models.LedgerRef{}); err != nil {
			t.Fatal(err)
		}
	}
	k, secret, err := s.CreateAPIKey(ctx, u.AccountID, models.AdminCLI, in)
	if err != nil {
		t.Fatal(err)
	}
	return &Account{ID: u.AccountID, Email: email, Key: k, Secret: secret}
}
