package payments

import (
	"context"
	"net/url"

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
