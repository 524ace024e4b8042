package models

import (
	"context"
	"crypto/rand"
	"errors"
	"math/big"
	"time"

	"gorm.io/gorm"
)

// Checkout session states, as providers name them.
const (
	CheckoutOpen     = "open"
	CheckoutComplete = "complete"
	CheckoutExpired  = "expired"
)

// TestCheckoutSession is the test payment provider's record of one
// checkout: what a real provider keeps on its side.
type TestCheckoutSession struct {
	ID            string
	PaymentID     string
	AccountID     string
	AmountCents   int64
	Currency      string
	Status        string // open | complete | expired
	PaymentStatus string // unpaid | paid
	CreatedAt     time.Time
	ExpiresAt     time.Time
}

// TestCheckoutTTL is how long a test checkout stays open, as Stripe's do.
const TestCheckoutTTL = 24 * time.Hour

// CreateTestCheckout opens a test checkout session for a payment. Its id is
// random, like a real provider's, so it cannot be guessed.
func (s *Store) CreateTestCheckout(ctx context.Context, p *Payment) (*TestCheckoutSession, error) {
	now := time.Now().UTC()
	cs := &TestCheckoutSession{
		ID: "cs_test_" + checkoutToken(32), PaymentID: p.ID, AccountID: p.AccountID,
		AmountCents: p.AmountCents(), Currency: p.Currency, Status: CheckoutOpen,
		PaymentStatus: CheckoutPaymentStatusUnpaid, CreatedAt: now, ExpiresAt: now.Add(TestCheckoutTTL),
	}
	if err := s.db.w.WithContext(ctx).Create(cs).Error; err != nil {
		return nil, err
	}
	return cs, nil
}

// TestCheckout returns a test checkout session; an open one past its
// expiry reads as expired.
func (s *Store) TestCheckout(ctx context.Context, id string) (*TestCheckoutSession, error) {
	var cs TestCheckoutSession
	err := s.db.w.WithContext(ctx).Where("id = ?", id).Take(&cs).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if cs.Status == CheckoutOpen && time.Now().After(cs.ExpiresAt) {
		cs.Status = CheckoutExpired
	}
	return &cs, nil
}

// SetTestCheckout moves an open test checkout session to status and
// paymentStatus. Only an open session moves, once; a second click
// reports ECONFLICT.
func (s *Store) SetTestCheckout(ctx context.Context, id, status, paymentStatus string) (*TestCheckoutSession, error) {
	res := s.db.w.WithContext(ctx).Model(&TestCheckoutSession{}).
		Where("id = ? AND status = ? AND expires_at > ?", id, CheckoutOpen, time.Now().UTC()).
		Updates(map[string]any{"status": status, "payment_status": paymentStatus})
	if res.Error != nil {
		return nil, res.Error
	}
	if res.RowsAffected == 0 {
		return nil, Errorf(ECONFLICT, "This checkout is already finished.")
	}
	return s.TestCheckout(ctx, id)
}

// RandomToken is n random letters and digits, for the test provider's ids.
func RandomToken(n int) string { return checkoutToken(n) }

const checkoutAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func checkoutToken(n int) string {
	b := make([]byte, n)
	max := big.NewInt(int64(len(checkoutAlphabet)))
	for i := range b {
		k, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic(err) // crypto/rand does not fail on supported platforms
		}
		b[i] = checkoutAlphabet[k.Int64()]
	}
	return string(b)
}
