package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
	"ttconsole/views"
)

// testCheckoutOf returns the signed-in account's test checkout and its
// payment; anyone else's is 404, like a missing one.
func (a *App) testCheckoutOf(c echo.Context) (*models.TestCheckoutSession, *models.Payment, error) {
	ctx := c.Request().Context()
	acct := currentAccount(c)
	cs, err := a.Store.TestCheckout(ctx, c.Param("session_id"))
	if err != nil {
		return nil, nil, err
	}
	if cs.AccountID != acct {
		return nil, nil, models.ErrNotFound
	}
	p, err := a.Store.PaymentOf(ctx, acct, cs.PaymentID)
	if err != nil {
		return nil, nil, err
	}
	return cs, p, nil
}

func (a *App) testCheckoutPage(c echo.Context) error {
	cs, p, err := a.testCheckoutOf(c)
	if err != nil {
		return err
	}
	d := testCheckoutView(cs, p)
	d.ReturnTo = returnTo(c.QueryParam("return_to"))
	return a.render(c, http.StatusOK, views.TestCheckout(a.page(c, "Test checkout", "billing"), d))
}

func testCheckoutView(cs *models.TestCheckoutSession, p *models.Payment) views.TestCheckoutData {
	return views.TestCheckoutData{
		SessionID: cs.ID, PaymentID: p.ID, Amount: models.FormatUSD(p.AmountMicros),
		Open: cs.Status == models.CheckoutOpen, Closed: checkoutClosed(cs),
	}
}

// checkoutClosed says what became of a test checkout that is not open.
func checkoutClosed(cs *models.TestCheckoutSession) string {
	switch {
	case cs.Status == models.CheckoutComplete && cs.PaymentStatus == models.CheckoutPaymentStatusPaid:
		return "This checkout is complete: it was paid."
	case cs.Status == models.CheckoutComplete:
		return "This checkout is complete, but its payment did not go through."
	}
	return "This checkout is closed: it was cancelled or expired without a payment."
}

// testCheckoutAction is a click on Pay, Fail or Cancel: the session moves
// at the "provider", and the events Stripe would send are delivered to the
// webhook code before the customer is sent back, as Stripe would, to
// Billing, which sends a paid one on to the page the recharge was for.
func (a *App) testCheckoutAction(c echo.Context) error {
	ctx := c.Request().Context()
	cs, p, err := a.testCheckoutOf(c)
	if err != nil {
		return err
	}
	var status, payStatus string
	var events []string
	back := "/billing?payment=" + p.ID + "&checkout="
	switch c.FormValue("action") {
	case "pay":
		status, payStatus = models.CheckoutComplete, models.CheckoutPaymentStatusPaid
		events = []string{models.EventCheckoutCompleted}
		back += "success"
	case "fail":
		// A delayed payment method: the checkout completes unpaid, then the
		// payment fails.
		status, payStatus = models.CheckoutComplete, models.CheckoutPaymentStatusUnpaid
		events = []string{models.EventCheckoutCompleted, models.EventAsyncPaymentFailed}
		back += "failed"
	case "cancel":
		// As at Stripe, leaving a checkout sends no event: the customer is
		// sent to the cancel link, where the console marks the payment
		// cancelled. The session is closed so it cannot be paid later.
		status, payStatus = models.CheckoutExpired, models.CheckoutPaymentStatusUnpaid
		back += "cancelled"
	default:
		return echo.NewHTTPError(http.StatusBadRequest, "Choose Pay, Fail or Cancel.")
	}
	cs, err = a.Store.SetTestCheckout(ctx, cs.ID, status, payStatus)
	if models.ErrorCode(err) == models.ECONFLICT {
		a.flash(c, "This test checkout was already finished.")
		return c.Redirect(http.StatusSeeOther, "/billing/payments/"+p.ID)
	}
	if err != nil {
		return err
	}
	for _, typ := range events {
		if err := a.deliverTestEvent(ctx, typ, cs, actor(c)); err != nil {
			return err
		}
	}
	return c.Redirect(http.StatusSeeOther, withReturnTo(back, returnTo(c.FormValue("return_to"))))
}

// deliverTestEvent signs a Stripe-format event about a test checkout and
// hands it to the webhook's own code, signature check included. via is
// the request that delivers it, as the audit log records a credit.
func (a *App) deliverTestEvent(ctx context.Context, typ string, cs *models.TestCheckoutSession, via models.Actor) error {
	secrets, err := a.webhookSecrets(ctx)
	if err != nil {
		return err
	}
	payload, err := testEventPayload(a.Store.NewID("evt_test"), typ, cs, time.Now())
	if err != nil {
		return err
	}
	header := signStripePayload(payload, secrets[0], time.Now())
	if _, err := a.receiveStripeEvent(ctx, payload, header, via); err != nil {
		var se *signatureError
		if errors.As(err, &se) {
			return errors.New("test provider: own event refused: " + se.msg)
		}
		return err
	}
	return nil
}

// testEventPayload is a Stripe event id about a checkout session, with
// the fields DESIGN §8 names.
func testEventPayload(id, typ string, cs *models.TestCheckoutSession, now time.Time) ([]byte, error) {
	ev := map[string]any{
		"id":          id,
		"object":      "event",
		"api_version": "2025-06-30.basil",
		"created":     now.Unix(),
		"livemode":    false,
		"type":        typ,
		"data": map[string]any{"object": map[string]any{
			"id":                  cs.ID,
			"object":              "checkout.session",
			"mode":                "payment",
			"client_reference_id": cs.PaymentID,
			"amount_total":        cs.AmountCents,
			"currency":            cs.Currency,
			"status":              cs.Status,
			"payment_status":      cs.PaymentStatus,
			"metadata":            map[string]string{"payment_id": cs.PaymentID},
			"created":             cs.CreatedAt.Unix(),
			"expires_at":          cs.ExpiresAt.Unix(),
		}},
		"request":          map[string]any{"id": nil, "idempotency_key": nil},
		"pending_webhooks": 1,
	}
	return json.Marshal(ev)
}
