package payments

import (
	"context"
	"errors"
	"time"

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

// CreateCustomer implements Cards.
func (sp *StripeProvider) CreateCustomer(ctx context.Context, accountID, email string) (string, error) {
	params := &stripe.CustomerCreateParams{Email: stripe.String(email)}
	params.AddMetadata("account_id", accountID)
	params.SetIdempotencyKey("customer-" + accountID)
	c, err := sp.client.V1Customers.Create(ctx, params)
	if err != nil {
		return "", err
	}
	return c.ID, nil
}

// CreateSetup implements Cards: a Checkout Session in setup mode, whose
// SetupIntent saves a card to the customer for off-session charges.
func (sp *StripeProvider) CreateSetup(ctx context.Context, r SetupRequest) (*Checkout, error) {
	params := &stripe.CheckoutSessionCreateParams{
		Mode:               stripe.String(string(stripe.CheckoutSessionModeSetup)),
		Customer:           stripe.String(r.CustomerID),
		ClientReferenceID:  stripe.String(r.AccountID),
		PaymentMethodTypes: []*string{stripe.String("card")},
		SuccessURL:         stripe.String(r.Success),
		CancelURL:          stripe.String(r.Cancel),
		SetupIntentData: &stripe.CheckoutSessionCreateSetupIntentDataParams{
			Description: stripe.String("TT wallet auto top-up"),
			Metadata:    map[string]string{"account_id": r.AccountID},
		},
	}
	params.AddMetadata("account_id", r.AccountID)
	s, err := sp.client.V1CheckoutSessions.Create(ctx, params)
	if err != nil {
		return nil, err
	}
	return &Checkout{SessionID: s.ID, URL: s.URL}, nil
}

// SetupCard implements Cards.
func (sp *StripeProvider) SetupCard(ctx context.Context, setupIntentID string) (string, *models.SavedCard, error) {
	params := &stripe.SetupIntentRetrieveParams{}
	params.AddExpand("payment_method")
	si, err := sp.client.V1SetupIntents.Retrieve(ctx, setupIntentID, params)
	if err != nil {
		return "", nil, err
	}
	if si.PaymentMethod == nil || si.Customer == nil {
		return "", nil, errors.New("setup intent " + si.ID + " saved no card")
	}
	pm := si.PaymentMethod
	if pm.Card == nil { // not expanded, or not a card
		_, card, err := sp.Card(ctx, pm.ID)
		if err != nil {
			return "", nil, err
		}
		card.SetupAt = time.Unix(si.Created, 0)
		return si.Customer.ID, card, nil
	}
	card := cardOf(pm)
	card.SetupAt = time.Unix(si.Created, 0)
	return si.Customer.ID, card, nil
}

// Card implements Cards.
func (sp *StripeProvider) Card(ctx context.Context, paymentMethodID string) (string, *models.SavedCard, error) {
	pm, err := sp.client.V1PaymentMethods.Retrieve(ctx, paymentMethodID, nil)
	if err != nil {
		return "", nil, err
	}
	if pm.Card == nil {
		return "", nil, errors.New("payment method " + pm.ID + " is not a card")
	}
	customer := ""
	if pm.Customer != nil {
		customer = pm.Customer.ID
	}
	card := cardOf(pm)
	card.SetupAt = time.Unix(pm.Created, 0)
	return customer, card, nil
}

func cardOf(pm *stripe.PaymentMethod) *models.SavedCard {
	return &models.SavedCard{ID: pm.ID, Brand: string(pm.Card.Brand), Last4: pm.Card.Last4,
		ExpMonth: int(pm.Card.ExpMonth), ExpYear: int(pm.Card.ExpYear)}
}

// RemoveCard implements Cards.
func (sp *StripeProvider) RemoveCard(ctx context.Context, paymentMethodID string) error {
	_, err := sp.client.V1PaymentMethods.Detach(ctx, paymentMethodID, nil)
	return err
}

// Charge implements Cards: off_session and confirm, so the card is
// charged now without the customer, or fails with the reason (a decline,
// or authentication_required when the bank wants the customer).
func (sp *StripeProvider) Charge(ctx context.Context, c ChargeRequest) (*Intent, error) {
	params := &stripe.PaymentIntentCreateParams{
		Amount:             stripe.Int64(c.AmountCents),
		Currency:           stripe.String(c.Currency),
		Customer:           stripe.String(c.CustomerID),
		PaymentMethod:      stripe.String(c.PaymentMethodID),
		PaymentMethodTypes: []*string{stripe.String("card")},
		OffSession:         stripe.Bool(true),
		Confirm:            stripe.Bool(true),
		Description:        stripe.String(c.Description),
	}
	params.AddMetadata("payment_id", c.PaymentID)
	params.AddMetadata("account_id", c.AccountID)
	params.SetIdempotencyKey(c.IdempotencyKey)
	pi, err := sp.client.V1PaymentIntents.Create(ctx, params)
	if err != nil {
		var se *stripe.Error
		if errors.As(err, &se) {
			if se.PaymentIntent != nil && se.PaymentIntent.ID != "" {
				in := intentOf(se.PaymentIntent)
				if in.ErrorCode == "" {
					in.ErrorCode, in.DeclineCode, in.ErrorMessage = string(se.Code), string(se.DeclineCode), se.Msg
				}
				return in, nil
			}
			// 4xx other than a rate limit: the request itself is wrong.
			perm := se.HTTPStatusCode >= 400 && se.HTTPStatusCode < 500 && se.HTTPStatusCode != 429 && se.HTTPStatusCode != 409
			return nil, &ChargeError{Permanent: perm, Err: err}
		}
		return nil, &ChargeError{Err: err}
	}
	return intentOf(pi), nil
}

// Intent implements Cards.
func (sp *StripeProvider) Intent(ctx context.Context, id string) (*Intent, error) {
	params := &stripe.PaymentIntentRetrieveParams{}
	params.AddExpand("payment_method")
	pi, err := sp.client.V1PaymentIntents.Retrieve(ctx, id, params)
	if err != nil {
		return nil, err
	}
	return intentOf(pi), nil
}

func intentOf(pi *stripe.PaymentIntent) *Intent {
	in := &Intent{ID: pi.ID, Status: string(pi.Status), PaymentID: pi.Metadata["payment_id"], AmountCents: pi.Amount,
		Currency: string(pi.Currency)}
	if pm := pi.PaymentMethod; pm != nil && pm.Card != nil {
		in.CardBrand, in.CardLast4 = string(pm.Card.Brand), pm.Card.Last4
	}
	if e := pi.LastPaymentError; e != nil {
		in.ErrorCode, in.DeclineCode, in.ErrorMessage = string(e.Code), string(e.DeclineCode), e.Msg
	}
	return in
}
