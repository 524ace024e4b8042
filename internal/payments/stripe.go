package payments

import (
	"context"

	"github.com/stripe/stripe-go/v82"

	"ttconsole/models"
)

// StripeProvider takes payments through Stripe Checkout.
type StripeProvider struct {
	client *stripe.Client
}

// NewStripeProvider returns a provider that uses the Stripe secret key.
// Options (such as stripe.WithBackends) let tests point it at a fake API.
func NewStripeProvider(secretKey string, opts ...stripe.ClientOption) *StripeProvider {
	return &StripeProvider{client: stripe.NewClient(secretKey, opts...)}
}

// Name implements Provider.
func (*StripeProvider) Name() string { return ProviderStripe }

// CheckoutOrigin implements Provider.
func (*StripeProvider) CheckoutOrigin() string { return "https://checkout.stripe.com" }

// CreateCheckout opens a Checkout Session in payment mode for one line: the
// recharge. client_reference_id is our payment id, so an event can be
// matched to its payment even before the session id is stored; the
// idempotency key makes a retried create return the same session.
func (sp *StripeProvider) CreateCheckout(ctx context.Context, p *models.Payment, urls CheckoutURLs) (*Checkout, error) {
	params := &stripe.CheckoutSessionCreateParams{
		Mode:              stripe.String(string(stripe.CheckoutSessionModePayment)),
		ClientReferenceID: stripe.String(p.ID),
		SuccessURL:        stripe.String(urls.Success),
		CancelURL:         stripe.String(urls.Cancel),
		LineItems: []*stripe.CheckoutSessionCreateLineItemParams{{
			Quantity: stripe.Int64(1),
			PriceData: &stripe.CheckoutSessionCreateLineItemPriceDataParams{
				Currency:   stripe.String(p.Currency),
				UnitAmount: stripe.Int64(p.AmountCents()),
				ProductData: &stripe.CheckoutSessionCreateLineItemPriceDataProductDataParams{
					Name: stripe.String("TT wallet recharge " + models.FormatUSD(p.AmountMicros)),
				},
			},
		}},
	}
	params.AddMetadata("payment_id", p.ID)
	params.AddMetadata("account_id", p.AccountID)
	params.SetIdempotencyKey("checkout-" + p.ID)
	s, err := sp.client.V1CheckoutSessions.Create(ctx, params)
	if err != nil {
		return nil, err
	}
	return &Checkout{SessionID: s.ID, URL: s.URL}, nil
}

// Session implements Provider.
func (sp *StripeProvider) Session(ctx context.Context, sessionID string) (*CheckoutState, error) {
	s, err := sp.client.V1CheckoutSessions.Retrieve(ctx, sessionID, nil)
	if err != nil {
		return nil, err
	}
	return &CheckoutState{
		SessionID: s.ID, Status: string(s.Status), PaymentStatus: string(s.PaymentStatus),
		AmountCents: s.AmountTotal, Currency: string(s.Currency), ClientReferenceID: s.ClientReferenceID,
	}, nil
}
