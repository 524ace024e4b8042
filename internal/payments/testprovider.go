package payments

import (
	"context"
	"net/url"
	"time"

	"ttconsole/models"
)

// TestProvider is the payment provider used when Stripe is not configured.
// Its checkout is a page of this console, clearly marked TEST MODE, whose
// Pay, Fail and Cancel buttons deliver Stripe-format events, signed like
// Stripe's, through the same webhook code real Stripe events go through.
// Its sessions live in the database, so they survive a restart and can be
// re-checked like a real provider's.
type TestProvider struct {
	Store *models.Store
}

// Name implements Provider.
func (*TestProvider) Name() string { return ProviderTest }

// CheckoutOrigin implements Provider: the checkout is on this site.
func (*TestProvider) CheckoutOrigin() string { return "" }

// CreateCheckout implements Provider.
func (tp *TestProvider) CreateCheckout(ctx context.Context, p *models.Payment, urls CheckoutURLs) (*Checkout, error) {
	cs, err := tp.Store.CreateTestCheckout(ctx, p)
	if err != nil {
		return nil, err
	}
	u := "/billing/test-checkout/" + cs.ID
	if urls.Return != "" {
		u += "?return_to=" + url.QueryEscape(urls.Return)
	}
	return &Checkout{SessionID: cs.ID, URL: u}, nil
}

// Session implements Provider.
func (tp *TestProvider) Session(ctx context.Context, sessionID string) (*CheckoutState, error) {
	cs, err := tp.Store.TestCheckout(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	return &CheckoutState{SessionID: cs.ID, Status: cs.Status, PaymentStatus: cs.PaymentStatus,
		AmountCents: cs.AmountCents, Currency: cs.Currency, ClientReferenceID: cs.PaymentID}, nil
}

// CreateCustomer implements Cards: a test customer needs no record.
func (*TestProvider) CreateCustomer(context.Context, string, string) (string, error) {
	return "cus_test_" + models.RandomToken(24), nil
}

// CreateSetup implements Cards: the setup page is a page of the console.
func (tp *TestProvider) CreateSetup(ctx context.Context, r SetupRequest) (*Checkout, error) {
	cs, err := tp.Store.CreateTestSetup(ctx, r.AccountID, r.CustomerID)
	if err != nil {
		return nil, err
	}
	return &Checkout{SessionID: cs.ID, URL: "/billing/test-setup/" + cs.ID}, nil
}

// SetupCard implements Cards.
func (tp *TestProvider) SetupCard(ctx context.Context, setupIntentID string) (string, *models.SavedCard, error) {
	c, err := tp.Store.TestCardOf(ctx, "", setupIntentID)
	if err != nil {
		return "", nil, err
	}
	return c.CustomerID, testSavedCard(c), nil
}

// Card implements Cards.
func (tp *TestProvider) Card(ctx context.Context, id string) (string, *models.SavedCard, error) {
	c, err := tp.Store.TestCardOf(ctx, id, "")
	if err != nil {
		return "", nil, err
	}
	return c.CustomerID, testSavedCard(c), nil
}

func testSavedCard(c *models.TestCard) *models.SavedCard {
	return &models.SavedCard{ID: c.ID, Brand: c.Brand, Last4: c.Last4, ExpMonth: c.ExpMonth, ExpYear: c.ExpYear,
		SetupAt: c.CreatedAt.Truncate(time.Second)}
}

// RemoveCard implements Cards: the test card stays, unused.
func (*TestProvider) RemoveCard(context.Context, string) error { return nil }

// Charge implements Cards: the card's behaviour decides the intent, which
// is kept, one per idempotency key, so a retry finds the same one.
func (tp *TestProvider) Charge(ctx context.Context, c ChargeRequest) (*Intent, error) {
	pi, err := tp.Store.ChargeTestCard(ctx, c.IdempotencyKey, models.TestPaymentIntent{PaymentID: c.PaymentID,
		CustomerID: c.CustomerID, CardID: c.PaymentMethodID, AmountCents: c.AmountCents, Currency: c.Currency})
	if models.ErrorCode(err) == models.ENOTFOUND || models.ErrorCode(err) == models.EINVALID {
		return nil, &ChargeError{Permanent: true, Err: err}
	}
	if err != nil {
		return nil, &ChargeError{Err: err}
	}
	return tp.intent(ctx, pi)
}

// Intent implements Cards.
func (tp *TestProvider) Intent(ctx context.Context, id string) (*Intent, error) {
	pi, err := tp.Store.TestIntent(ctx, id)
	if err != nil {
		return nil, err
	}
	return tp.intent(ctx, pi)
}

func (tp *TestProvider) intent(ctx context.Context, pi *models.TestPaymentIntent) (*Intent, error) {
	in := &Intent{ID: pi.ID, Status: pi.Status, PaymentID: pi.PaymentID, AmountCents: pi.AmountCents, Currency: pi.Currency,
		ErrorCode: pi.ErrorCode, DeclineCode: pi.DeclineCode, ErrorMessage: pi.ErrorMessage}
	if c, err := tp.Store.TestCardOf(ctx, pi.CardID, ""); err == nil {
		in.CardBrand, in.CardLast4 = c.Brand, c.Last4
	}
	return in, nil
}
