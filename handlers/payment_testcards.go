package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"ttconsole/internal/payments"
	"ttconsole/models"
	"ttconsole/views"
)

// testSetupOf returns the test card setup of the account being worked in
// (a member's switched-to account, not the one they signed up in); any
// other account's is 404, like a missing one.
func (a *App) testSetupOf(c echo.Context) (*models.TestSetupSession, error) {
	cs, err := a.Store.TestSetup(c.Request().Context(), c.Param("session_id"))
	if err != nil {
		return nil, err
	}
	if cs.AccountID != currentAccount(c) {
		return nil, models.ErrNotFound
	}
	return cs, nil
}

// testSetupPage is the test provider's card-saving page: three cards
// that behave as Stripe's test cards do when charged off-session.
func (a *App) testSetupPage(c echo.Context) error {
	cs, err := a.testSetupOf(c)
	if err != nil {
		return err
	}
	return a.renderTestSetup(c, http.StatusOK, cs, views.Form{Values: map[string]string{"card": "4242"}})
}

func (a *App) renderTestSetup(c echo.Context, status int, cs *models.TestSetupSession, f views.Form) error {
	d := views.TestSetupData{SessionID: cs.ID, Open: cs.Status == models.CheckoutOpen, Form: f}
	switch cs.Status {
	case models.CheckoutComplete:
		d.Closed = "This card setup is complete: the card was saved."
	case models.CheckoutExpired:
		d.Closed = "This card setup is closed: it was cancelled or expired."
	}
	for _, k := range models.TestCards {
		d.Cards = append(d.Cards, views.TestCardOption{Number: k.Number, Label: models.CardLabel(k.Brand, k.Number), Behavior: k.Label,
			Checked: f.Value("card") == k.Number})
	}
	return a.render(c, status, views.TestSetup(a.page(c, "Test card setup", "billing"), d))
}

// testSetupAction saves the card chosen, or cancels: the session moves at
// the "provider", and the events Stripe sends for a completed setup are
// delivered to the webhook code before the customer is sent back.
func (a *App) testSetupAction(c echo.Context) error {
	ctx := c.Request().Context()
	cs, err := a.testSetupOf(c)
	if err != nil {
		return err
	}
	var kind *models.TestCardKind
	back := "/billing?card=cancelled#payment-method"
	switch c.FormValue("action") {
	case "save":
		k, ok := models.TestCardNamed(c.FormValue("card"))
		if !ok {
			return a.renderTestSetup(c, http.StatusUnprocessableEntity, cs, views.Form{Values: map[string]string{"card": c.FormValue("card")},
				Errors: map[string]string{"card": "Choose one of the three test cards."}})
		}
		kind, back = &k, "/billing?card=saved#payment-method"
	case "cancel":
	default:
		return echo.NewHTTPError(http.StatusBadRequest, "Choose Save card or Cancel.")
	}
	cs, card, err := a.Store.CompleteTestSetup(ctx, cs.ID, kind)
	if models.ErrorCode(err) == models.ECONFLICT {
		a.flash(c, "This test card setup was already finished.")
		return c.Redirect(http.StatusSeeOther, "/billing#payment-method")
	}
	if err != nil {
		return err
	}
	if card != nil {
		if err := a.deliverSetupEvents(ctx, cs, card); err != nil {
			return err
		}
	}
	return c.Redirect(http.StatusSeeOther, back)
}

// deliverSetupEvents sends what Stripe sends when a checkout in setup
// mode completes: checkout.session.completed, then setup_intent.succeeded.
func (a *App) deliverSetupEvents(ctx context.Context, cs *models.TestSetupSession, card *models.TestCard) error {
	now := time.Now()
	session, err := stripeEventPayload(a.Store.NewID("evt_test"), "checkout.session.completed", now, map[string]any{
		"id": cs.ID, "object": "checkout.session", "mode": "setup", "status": "complete", "payment_status": "no_payment_required",
		"customer": cs.CustomerID, "client_reference_id": cs.AccountID, "setup_intent": card.SetupIntentID,
		"metadata": map[string]string{"account_id": cs.AccountID}, "created": cs.CreatedAt.Unix(), "expires_at": cs.ExpiresAt.Unix(),
	})
	if err != nil {
		return err
	}
	setup, err := stripeEventPayload(a.Store.NewID("evt_test"), models.EventSetupSucceeded, now, map[string]any{
		"id": card.SetupIntentID, "object": "setup_intent", "status": "succeeded", "usage": "off_session",
		"customer": cs.CustomerID, "payment_method": card.ID, "created": card.CreatedAt.Unix(),
		"metadata": map[string]string{"account_id": cs.AccountID},
	})
	if err != nil {
		return err
	}
	for _, p := range [][]byte{session, setup} {
		if err := a.deliverTestPayload(ctx, p, models.Actor{}); err != nil {
			return err
		}
	}
	return nil
}

// deliverIntentEvent sends the event Stripe sends for a PaymentIntent of
// the test provider in its state: succeeded, payment_failed (with
// last_payment_error's code and decline_code) or requires_action.
func (a *App) deliverIntentEvent(ctx context.Context, in *payments.Intent) error {
	typ := intentEventType(in)
	if typ == "" {
		return nil
	}
	obj := map[string]any{
		"id": in.ID, "object": "payment_intent", "amount": in.AmountCents, "currency": in.Currency, "status": in.Status,
		"metadata": map[string]string{"payment_id": in.PaymentID}, "created": time.Now().Unix(), "livemode": false,
		"last_payment_error": nil, "amount_received": 0,
	}
	if in.Status == "succeeded" {
		obj["amount_received"] = in.AmountCents
	}
	if in.ErrorCode != "" {
		obj["last_payment_error"] = map[string]any{"type": "card_error", "code": in.ErrorCode, "decline_code": in.DeclineCode,
			"message": in.ErrorMessage}
	}
	payload, err := stripeEventPayload(a.Store.NewID("evt_test"), typ, time.Now(), obj)
	if err != nil {
		return err
	}
	return a.deliverTestPayload(ctx, payload, models.Actor{})
}
