package handlers

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stripe/stripe-go/v82"

	"ttconsole/internal/payments"
	"ttconsole/models"
)

// Webhook signature limits.
const (
	// stripeTolerance is how old a signed event may be: older ones could be
	// replays.
	stripeTolerance = 5 * time.Minute
	// stripeClockSkew is how far in the future a timestamp may be, for
	// clocks a little apart; anything later is refused, which the stock
	// library does not do.
	stripeClockSkew = 5 * time.Second
	// maxWebhookBody bounds what the webhook reads.
	maxWebhookBody = 256 << 10
)

// signatureError says why a webhook's Stripe-Signature was refused.
type signatureError struct{ msg string }

func (e *signatureError) Error() string { return "webhook signature: " + e.msg }

// verifyStripeSignature checks a Stripe-Signature header
// ("t=<unix>,v1=<hex>,v1=<hex>,v0=…") against the payload: some v1 must be
// the HMAC-SHA256, under one of secrets, of "<t>.<payload>", compared in
// constant time, and t must be at most stripeTolerance old and not in the
// future. Several v1 values (Stripe sends one per secret while a secret is
// rotated) and several secrets are accepted; v0 and unknown schemes are
// ignored.
func verifyStripeSignature(payload []byte, header string, secrets []string, now time.Time) error {
	if header == "" {
		return &signatureError{"missing Stripe-Signature header"}
	}
	var ts int64 = -1
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || ts != -1 {
				return &signatureError{"bad timestamp"}
			}
			ts = n
		case "v1":
			if b, err := hex.DecodeString(v); err == nil && len(b) == sha256.Size {
				sigs = append(sigs, b)
			}
		}
	}
	if ts < 0 {
		return &signatureError{"no timestamp"}
	}
	if len(sigs) == 0 {
		return &signatureError{"no v1 signature"}
	}
	signed := time.Unix(ts, 0)
	if now.Sub(signed) > stripeTolerance {
		return &signatureError{"timestamp too old"}
	}
	if signed.Sub(now) > stripeClockSkew {
		return &signatureError{"timestamp in the future"}
	}
	match := false
	for _, secret := range secrets {
		want := stripeMAC(payload, secret, ts)
		for _, sig := range sigs {
			// Every comparison runs, so timing says nothing about which matched.
			if hmac.Equal(sig, want) {
				match = true
			}
		}
	}
	if !match {
		return &signatureError{"no matching v1 signature"}
	}
	return nil
}

func stripeMAC(payload []byte, secret string, ts int64) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte("."))
	m.Write(payload)
	return m.Sum(nil)
}

// signStripePayload returns the Stripe-Signature header for payload signed
// with secret at t, as Stripe makes it.
func signStripePayload(payload []byte, secret string, t time.Time) string {
	ts := t.Unix()
	return "t=" + strconv.FormatInt(ts, 10) + ",v1=" + hex.EncodeToString(stripeMAC(payload, secret, ts))
}

// webhookSecrets are the secrets webhook events are verified with: the
// configured STRIPE_WEBHOOK_SECRET(s), or the test provider's generated
// secret, kept in the database so every instance shares it.
func (a *App) webhookSecrets(ctx context.Context) ([]string, error) {
	if len(a.Config.StripeWebhookSecrets) > 0 {
		return a.Config.StripeWebhookSecrets, nil
	}
	b, err := a.Store.SecretSetting(ctx, "test_webhook_secret", 32)
	if err != nil {
		return nil, err
	}
	return []string{"whsec_test_" + hex.EncodeToString(b)}, nil
}

// stripeWebhook receives Stripe's events. It answers 2xx only after the
// event is recorded and acted on, so a failure makes Stripe deliver again;
// a redelivery answers 2xx and changes nothing; a bad signature answers 400
// and writes nothing. It has no session and no CSRF: the signature is the
// authentication.
func (a *App) stripeWebhook(c echo.Context) error {
	payload, err := io.ReadAll(io.LimitReader(c.Request().Body, maxWebhookBody+1))
	if err != nil {
		return err
	}
	if len(payload) > maxWebhookBody {
		return apiError(TypeRequestTooLarge, "The event is too large.")
	}
	res, err := a.receiveStripeEvent(c.Request().Context(), payload, c.Request().Header.Get("Stripe-Signature"), actor(c))
	if se, ok := err.(*signatureError); ok {
		a.Log.Warn("webhook refused", "request_id", RequestID(c), "reason", se.msg)
		return apiError(TypeInvalidSignature, "The Stripe-Signature header does not verify: "+se.msg+".")
	}
	if ae, ok := err.(*APIError); ok {
		return ae
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"received": "true", "outcome": res.Outcome})
}

// receiveStripeEvent is the webhook's whole job, shared by the HTTP
// handler and the test provider: verify the signature, parse the event and
// apply it to its payment in one transaction. via is the request that
// delivered it.
func (a *App) receiveStripeEvent(ctx context.Context, payload []byte, sigHeader string, via models.Actor) (*models.PaymentEventResult, error) {
	secrets, err := a.webhookSecrets(ctx)
	if err != nil {
		return nil, err
	}
	if err := verifyStripeSignature(payload, sigHeader, secrets, time.Now()); err != nil {
		return nil, err
	}
	var ev stripe.Event
	if err := json.Unmarshal(payload, &ev); err != nil || ev.ID == "" || ev.Type == "" {
		return nil, apiError(TypeInvalidRequest, "The body is not a Stripe event.")
	}
	pe := models.PaymentEvent{ID: ev.ID, Provider: payments.ProviderStripe, Type: string(ev.Type)}
	// The test provider's events carry the test provider's name, so they
	// only ever match its payments and cards.
	testEvent := func(id string, known func() error) bool {
		return strings.Contains(id, "_test_") && strings.HasPrefix(ev.ID, "evt_test_") && !ev.Livemode && known() == nil
	}
	switch {
	case ev.Data == nil:
	case strings.HasPrefix(pe.Type, "checkout.session."):
		var cs stripe.CheckoutSession
		if err := json.Unmarshal(ev.Data.Raw, &cs); err != nil {
			return nil, apiError(TypeInvalidRequest, "The event's checkout session does not parse.")
		}
		if cs.Mode == stripe.CheckoutSessionModeSetup {
			return a.receiveSetupSession(ctx, ev, &cs, testEvent(cs.ID, func() error { _, err := a.Store.TestSetup(ctx, cs.ID); return err }), via)
		}
		pe.SessionID, pe.ClientReferenceID = cs.ID, cs.ClientReferenceID
		pe.AmountCents, pe.Currency, pe.PaymentStatus = cs.AmountTotal, string(cs.Currency), string(cs.PaymentStatus)
		if testEvent(cs.ID, func() error { _, err := a.Store.TestCheckout(ctx, cs.ID); return err }) {
			pe.Provider = payments.ProviderTest
		} else if cs.PaymentIntent != nil && cs.PaymentStatus == stripe.CheckoutSessionPaymentStatusPaid {
			pe.CardBrand, pe.CardLast4 = a.intentCard(ctx, cs.PaymentIntent.ID)
		}
	case pe.Type == models.EventSetupSucceeded:
		var si stripe.SetupIntent
		if err := json.Unmarshal(ev.Data.Raw, &si); err != nil {
			return nil, apiError(TypeInvalidRequest, "The event's setup intent does not parse.")
		}
		return a.receiveSetupIntent(ctx, ev, &si, testEvent(si.ID, func() error { _, err := a.Store.TestCardOf(ctx, "", si.ID); return err }), via)
	case strings.HasPrefix(pe.Type, "payment_intent."):
		var pi stripe.PaymentIntent
		if err := json.Unmarshal(ev.Data.Raw, &pi); err != nil {
			return nil, apiError(TypeInvalidRequest, "The event's payment intent does not parse.")
		}
		pe.IntentID, pe.ClientReferenceID = pi.ID, pi.Metadata["payment_id"]
		pe.AmountCents, pe.Currency = pi.Amount, string(pi.Currency)
		if e := pi.LastPaymentError; e != nil {
			pe.FailureCode, pe.DeclineCode, pe.FailureMessage = string(e.Code), string(e.DeclineCode), e.Msg
		}
		if pm := pi.PaymentMethod; pm != nil && pm.Card != nil {
			pe.CardBrand, pe.CardLast4 = string(pm.Card.Brand), pm.Card.Last4
		}
		if testEvent(pi.ID, func() error { _, err := a.Store.TestIntent(ctx, pi.ID); return err }) {
			pe.Provider = payments.ProviderTest
		}
	}
	res, err := a.Store.ApplyPaymentEvent(ctx, pe, via)
	if err != nil {
		return nil, fmt.Errorf("apply %s %s: %w", pe.Type, pe.ID, err)
	}
	switch res.Outcome {
	case models.EventMismatch:
		a.Log.Error("payment event amount differs from the payment: not credited",
			"event_id", pe.ID, "payment_id", res.PaymentID, "amount_cents", pe.AmountCents, "currency", pe.Currency)
	case models.EventCredited:
		a.Log.Info("payment credited", "event_id", pe.ID, "payment_id", res.PaymentID, "account_id", res.AccountID)
		a.kickBilling() // its receipt
	case models.EventMarkedFailed, models.EventNeedsAction:
		a.kickBilling() // its alert
	}
	return res, nil
}

// intentCard names the card a Checkout's PaymentIntent was paid with,
// for the receipt; "" when the provider cannot say now (the payment is
// credited all the same).
func (a *App) intentCard(ctx context.Context, intentID string) (brand, last4 string) {
	prov := a.providerNamed(payments.ProviderStripe)
	if prov == nil {
		return "", ""
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	in, err := prov.Intent(ctx, intentID)
	if err != nil {
		a.Log.Warn("card of a checkout payment", "intent_id", intentID, "err", err.Error())
		return "", ""
	}
	return in.CardBrand, in.CardLast4
}

// receiveSetupSession saves the card of a completed checkout in setup
// mode: the provider says which card its SetupIntent saved.
func (a *App) receiveSetupSession(ctx context.Context, ev stripe.Event, cs *stripe.CheckoutSession, test bool, via models.Actor) (*models.PaymentEventResult, error) {
	ce := models.CardEvent{ID: ev.ID, Provider: payments.ProviderStripe, Type: string(ev.Type), SessionID: cs.ID}
	if ev.Type != stripe.EventTypeCheckoutSessionCompleted || cs.SetupIntent == nil || cs.SetupIntent.ID == "" {
		return a.applyCardEvent(ctx, ce, via) // recorded; nothing to save
	}
	prov := a.cardsFor(test)
	if test {
		ce.Provider = payments.ProviderTest
	}
	customer, card, err := prov.SetupCard(ctx, cs.SetupIntent.ID)
	if err != nil && !providerNotFound(err) {
		return nil, fmt.Errorf("setup intent %s: %w", cs.SetupIntent.ID, err)
	}
	if err == nil {
		ce.CustomerID, ce.Card = customer, *card
	}
	return a.applyCardEvent(ctx, ce, via)
}

// receiveSetupIntent saves the card of a SetupIntent that succeeded.
func (a *App) receiveSetupIntent(ctx context.Context, ev stripe.Event, si *stripe.SetupIntent, test bool, via models.Actor) (*models.PaymentEventResult, error) {
	ce := models.CardEvent{ID: ev.ID, Provider: payments.ProviderStripe, Type: string(ev.Type)}
	if test {
		ce.Provider = payments.ProviderTest
	}
	if si.PaymentMethod == nil || si.Customer == nil {
		return a.applyCardEvent(ctx, ce, via)
	}
	_, card, err := a.cardsFor(test).Card(ctx, si.PaymentMethod.ID)
	if err != nil && !providerNotFound(err) {
		return nil, fmt.Errorf("payment method %s: %w", si.PaymentMethod.ID, err)
	}
	if err == nil {
		card.SetupAt = time.Unix(si.Created, 0)
		ce.CustomerID, ce.Card = si.Customer.ID, *card
	}
	return a.applyCardEvent(ctx, ce, via)
}

func (a *App) applyCardEvent(ctx context.Context, ce models.CardEvent, via models.Actor) (*models.PaymentEventResult, error) {
	outcome, acct, err := a.Store.ApplyCardEvent(ctx, ce, via)
	if err != nil {
		return nil, fmt.Errorf("apply %s %s: %w", ce.Type, ce.ID, err)
	}
	if outcome == models.EventCardSaved {
		a.Log.Info("card saved", "event_id", ce.ID, "account_id", acct, "card", models.CardLabel(ce.Card.Brand, ce.Card.Last4))
	}
	return &models.PaymentEventResult{Outcome: outcome, AccountID: acct}, nil
}

// cardsFor is the provider that knows an event's card: the test
// provider for its own events, otherwise the configured one.
func (a *App) cardsFor(test bool) payments.Provider {
	if test {
		return &payments.TestProvider{Store: a.Store}
	}
	return a.provider()
}

// providerNotFound reports whether the provider said it has no such
// object: the event is not about one of our cards.
func providerNotFound(err error) bool {
	var se *stripe.Error
	return models.ErrorCode(err) == models.ENOTFOUND || errors.As(err, &se) && se.HTTPStatusCode == http.StatusNotFound
}
