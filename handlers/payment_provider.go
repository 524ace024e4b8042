package handlers

import (
	"context"

	"ttconsole/models"
)

// PaymentProvider takes customers' money for recharges: it opens a hosted
// checkout and, when asked, reports where a checkout stands. What it says
// about a payment reaches the wallet only through the signed webhook
// (/webhooks/stripe) or a re-check, both of which credit through
// models.Store.ApplyPaymentEvent, exactly once.
type PaymentProvider interface {
	// Name is recorded on each payment: "stripe" or "test".
	Name() string
	// CreateCheckout opens a checkout for a pending payment.
	CreateCheckout(ctx context.Context, p *models.Payment, urls CheckoutURLs) (*Checkout, error)
	// Session reports a checkout's state at the provider.
	Session(ctx context.Context, sessionID string) (*CheckoutState, error)
	// CheckoutOrigin is the origin the recharge form's redirect lands on,
	// which the billing page's form-action policy must allow; "" when the
	// checkout is on this site.
	CheckoutOrigin() string
}

// CheckoutURLs are where the provider sends the customer back.
type CheckoutURLs struct {
	Success string
	Cancel  string
}

// Checkout is an opened checkout session.
type Checkout struct {
	SessionID string
	URL       string
}

// CheckoutState is a checkout session as the provider sees it.
type CheckoutState struct {
	SessionID         string
	Status            string // open | complete | expired
	PaymentStatus     string // paid | unpaid | no_payment_required
	AmountCents       int64
	Currency          string
	ClientReferenceID string
}

// Payment provider names.
const (
	ProviderStripe = "stripe"
	ProviderTest   = "test"
)

// provider is the provider new recharges go through: the configured one,
// or the test provider when Stripe is not configured.
func (a *App) provider() PaymentProvider {
	if a.Payments != nil {
		return a.Payments
	}
	return &TestProvider{Store: a.Store}
}

// providerNamed is the provider that handles an existing payment, which
// may predate a configuration change.
func (a *App) providerNamed(name string) PaymentProvider {
	if p := a.provider(); p.Name() == name {
		return p
	}
	if name == ProviderTest {
		return &TestProvider{Store: a.Store}
	}
	return nil
}
