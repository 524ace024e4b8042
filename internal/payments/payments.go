// Package payments takes customers' money for recharges and auto
// top-ups: the provider interface, Stripe (Checkout, saved cards,
// off-session PaymentIntents), and the test provider whose checkout is a
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

	Cards
}

// Cards is what a provider does with saved cards: a customer per account,
// a checkout in setup mode that saves a card, and off-session charges of
// it (auto top-up). A charge's outcome reaches the wallet through the
// PaymentIntent's signed events (or a re-check), like a checkout's.
type Cards interface {
	// CreateCustomer makes the account's customer; the same account gets
	// the same customer from a retry.
	CreateCustomer(ctx context.Context, accountID, email string) (string, error)
	// CreateSetup opens a checkout that saves a card to a customer.
	CreateSetup(ctx context.Context, s SetupRequest) (*Checkout, error)
	// SetupCard reads the card a completed setup saved.
	SetupCard(ctx context.Context, setupIntentID string) (customerID string, _ *models.SavedCard, _ error)
	// Card reads a saved card (a payment method) and its customer.
	Card(ctx context.Context, paymentMethodID string) (customerID string, _ *models.SavedCard, _ error)
	// RemoveCard detaches a card from its customer.
	RemoveCard(ctx context.Context, paymentMethodID string) error
	// Charge makes and confirms an off-session PaymentIntent on a saved
	// card. A card declined or needing authentication is an Intent with
	// its error code, not an error; the same idempotency key never
	// charges twice.
	Charge(ctx context.Context, c ChargeRequest) (*Intent, error)
	// Intent reports a PaymentIntent.
	Intent(ctx context.Context, id string) (*Intent, error)
}

// SetupRequest is a checkout in setup mode for one account's customer.
type SetupRequest struct {
	AccountID, CustomerID string
	Success, Cancel       string
}

// ChargeRequest is an off-session charge of a saved card.
type ChargeRequest struct {
	PaymentID, AccountID        string
	CustomerID, PaymentMethodID string
	AmountCents                 int64
	Currency                    string
	IdempotencyKey              string
	Description                 string
}

// Intent is a PaymentIntent as the provider reports it.
type Intent struct {
	ID          string
	Status      string // succeeded | processing | requires_action | requires_payment_method | canceled
	PaymentID   string // our payment, from its metadata
	AmountCents int64
	Currency    string
	CardBrand   string
	CardLast4   string
	// The last payment error, when it failed.
	ErrorCode, DeclineCode, ErrorMessage string
}

// ChargeError is a charge the provider refused without making a
// PaymentIntent. Permanent ones (a removed card, a bad request) will not
// work if tried again; the others (the network, the provider's own
// errors) may.
type ChargeError struct {
	Permanent bool
	Err       error
}

func (e *ChargeError) Error() string { return "charge: " + e.Err.Error() }
func (e *ChargeError) Unwrap() error { return e.Err }

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

var (
	_ Provider = (*StripeProvider)(nil)
	_ Provider = (*TestProvider)(nil)
)
