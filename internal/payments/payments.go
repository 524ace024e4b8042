// Package payments takes customers' money for recharges: the provider
// interface, Stripe Checkout, and the test provider whose checkout is a
// page of the console. The webhook that credits payments is handlers'.
package payments

import (
	"context"

	"ttconsole/models"
)

// Provider takes customers' money for recharges: it opens a hosted
// checkout and, when asked, reports where a checkout stands. What it says
// about a payment reaches the wallet only through the signed webhook
// (/webhooks/stripe) or a re-check, both of which credit through
// models.Store.ApplyPaymentEvent, exactly once.
type Provider interface {
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
	// Return is the console page the recharge started from (a path on
	// this site, or ""), already in Success and Cancel; a provider whose
	// checkout is a page of the console carries it itself.
	Return string
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
