package models

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// What a test card does when charged off-session.
const (
	TestCardSucceeds     = "succeed"
	TestCardDeclines     = "decline"
	TestCardAuthenticate = "authenticate"
)

// TestCardKind is one of the test provider's cards, as its setup page
// offers them (Stripe's test numbers that behave alike).
type TestCardKind struct {
	Number   string // what the form sends: the last four digits
	Brand    string
	Behavior string
	Label    string
	// A decline's codes, as Stripe gives them.
	ErrorCode, DeclineCode, Message string
}

// TestCards are the cards the test provider's setup page offers.
var TestCards = []TestCardKind{
	{Number: "4242", Brand: "visa", Behavior: TestCardSucceeds, Label: "Payments succeed"},
	{Number: "9995", Brand: "visa", Behavior: TestCardDeclines, Label: "Declined: insufficient funds",
		ErrorCode: "card_declined", DeclineCode: "insufficient_funds", Message: "Your card has insufficient funds."},
	{Number: "3184", Brand: "visa", Behavior: TestCardAuthenticate, Label: "Needs the cardholder's authentication",
		ErrorCode: CodeAuthenticationRequired, DeclineCode: CodeAuthenticationRequired,
		Message: "Your card was declined. This transaction requires authentication."},
}

// TestCardNamed returns the test card with these last four digits.
func TestCardNamed(number string) (TestCardKind, bool) {
	for _, c := range TestCards {
		if c.Number == number {
			return c, true
		}
	}
	return TestCardKind{}, false
}

// TestSetupSession is the test provider's record of a card-saving checkout.
type TestSetupSession struct {
	ID            string
	AccountID     string
	CustomerID    string
	Status        string // open | complete | expired
	SetupIntentID *string
	CreatedAt     time.Time
	ExpiresAt     time.Time
}

// TestCard is a card saved with the test provider.
type TestCard struct {
	ID            string
	CustomerID    string
	SetupIntentID string
	Brand         string
	Last4         string `gorm:"column:last4"`
	ExpMonth      int
	ExpYear       int
	Behavior      string
	CreatedAt     time.Time
}

// TestPaymentIntent is a PaymentIntent of the test provider.
type TestPaymentIntent struct {
	ID             string
	IdempotencyKey string
	PaymentID      string
	CustomerID     string
	CardID         string
	AmountCents    int64
	Currency       string
	Status         string // succeeded | requires_payment_method
	ErrorCode      string
	DeclineCode    string
	ErrorMessage   string
	CreatedAt      time.Time
}

// CreateTestSetup opens a test card-saving session for a customer.
func (s *Store) CreateTestSetup(ctx context.Context, accountID, customerID string) (*TestSetupSession, error) {
	now := time.Now().UTC()
	cs := &TestSetupSession{ID: "cs_test_" + checkoutToken(32), AccountID: accountID, CustomerID: customerID,
		Status: CheckoutOpen, CreatedAt: now, ExpiresAt: now.Add(TestCheckoutTTL)}
	return cs, s.db.w.WithContext(ctx).Create(cs).Error
}

// TestSetup returns a test setup session; an open one past its expiry
// reads as expired.
func (s *Store) TestSetup(ctx context.Context, id string) (*TestSetupSession, error) {
	var cs TestSetupSession
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

// CompleteTestSetup saves kind's card through an open test setup session,
// once: a second click is ECONFLICT. cancel closes the session instead.
func (s *Store) CompleteTestSetup(ctx context.Context, id string, kind *TestCardKind) (*TestSetupSession, *TestCard, error) {
	var card *TestCard
	err := s.db.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := time.Now().UTC()
		status := CheckoutExpired
		var seti *string
		if kind != nil {
			status = CheckoutComplete
			id := "seti_test_" + checkoutToken(24)
			seti = &id
		}
		res := tx.Model(&TestSetupSession{}).Where("id = ? AND status = ? AND expires_at > ?", id, CheckoutOpen, now).
			Updates(map[string]any{"status": status, "setup_intent_id": seti})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return Errorf(ECONFLICT, "This card setup is already finished.")
		}
		if kind == nil {
			return nil
		}
		var cs TestSetupSession
		if err := tx.Where("id = ?", id).Take(&cs).Error; err != nil {
			return err
		}
		card = &TestCard{ID: "pm_test_" + checkoutToken(24), CustomerID: cs.CustomerID, SetupIntentID: *seti,
			Brand: kind.Brand, Last4: kind.Number, ExpMonth: 12, ExpYear: now.Year() + 3, Behavior: kind.Behavior, CreatedAt: now}
		return tx.Create(card).Error
	})
	if err != nil {
		return nil, nil, err
	}
	cs, err := s.TestSetup(ctx, id)
	return cs, card, err
}

// TestCardOf returns a test card by its id, or by its setup intent's.
func (s *Store) TestCardOf(ctx context.Context, id, setupIntentID string) (*TestCard, error) {
	var c TestCard
	q := s.db.w.WithContext(ctx)
	if id != "" {
		q = q.Where("id = ?", id)
	} else {
		q = q.Where("setup_intent_id = ?", setupIntentID)
	}
	err := q.Take(&c).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	return &c, err
}

// ChargeTestCard makes the test PaymentIntent of an idempotency key, once:
// the same key returns the same intent, as Stripe's idempotency keys do.
// The card decides its outcome.
func (s *Store) ChargeTestCard(ctx context.Context, key string, pi TestPaymentIntent) (*TestPaymentIntent, error) {
	c, err := s.TestCardOf(ctx, pi.CardID, "")
	if err != nil {
		return nil, err
	}
	if c.CustomerID != pi.CustomerID {
		return nil, Errorf(EINVALID, "The card %s does not belong to the customer %s.", pi.CardID, pi.CustomerID)
	}
	pi.ID, pi.IdempotencyKey, pi.CreatedAt, pi.Status = "pi_test_"+checkoutToken(24), key, time.Now().UTC(), "succeeded"
	if kind, ok := TestCardNamed(c.Last4); ok && kind.Behavior != TestCardSucceeds {
		pi.Status, pi.ErrorCode, pi.DeclineCode, pi.ErrorMessage = "requires_payment_method", kind.ErrorCode, kind.DeclineCode, kind.Message
	}
	db := s.db.w.WithContext(ctx)
	if err := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&pi).Error; err != nil {
		return nil, err
	}
	var out TestPaymentIntent
	return &out, db.Where("idempotency_key = ?", key).Take(&out).Error
}

// TestIntent returns a test PaymentIntent.
func (s *Store) TestIntent(ctx context.Context, id string) (*TestPaymentIntent, error) {
	var pi TestPaymentIntent
	err := s.db.w.WithContext(ctx).Where("id = ?", id).Take(&pi).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	return &pi, err
}
