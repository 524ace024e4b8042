package handlers

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"ttconsole/internal/payments"
	"ttconsole/models"
	"ttconsole/views"
)

// topupData fills the Billing page's saved card and auto top-up.
func (a *App) topupData(ctx context.Context, acct string, d *views.BillingData, forms billingForms, now time.Time) error {
	prof, err := a.Store.BillingProfileOf(ctx, acct)
	if err != nil {
		return err
	}
	d.CardMessage = forms.Card
	if prof.HasCard() {
		d.Card = prof.CardLabel()
		d.CardExpiry = fmt.Sprintf("%02d/%d", prof.CardExpMonth, prof.CardExpYear)
	}
	d.Topup = forms.Topup
	if d.Topup.Values == nil {
		d.Topup.Values = map[string]string{}
		if prof.TopupEnabled {
			d.Topup.Values["enabled"] = "on"
		}
		if prof.TopupAmountMicros > 0 {
			d.Topup.Values["threshold_usd"] = plainUSD(prof.TopupThresholdMicros)
			d.Topup.Values["amount_usd"] = plainUSD(prof.TopupAmountMicros)
			d.Topup.Values["monthly_cap_usd"] = plainUSD(prof.TopupCapMicros)
		}
	}
	if !prof.TopupEnabled {
		return nil
	}
	d.TopupOn = true
	d.TopupSentence = prof.Topup().Sentence()
	if prof.TopupPausedAt != nil {
		d.TopupPaused = fmt.Sprintf("Auto top-up paused itself after %d failed top-ups in a row: nothing more is charged. "+
			"Check or replace your card, then save the settings below to turn it on again.", models.TopupPauseAfter)
	}
	started, err := a.Store.TopupsThisMonth(ctx, acct, now)
	if err != nil {
		return err
	}
	m := models.FormatUSDs(started, prof.TopupCapMicros)
	d.TopupMonth = "Auto top-ups in " + now.UTC().Format("January 2006") + " (UTC): " + m[0] + " of the " + m[1] + " cap."
	if started+prof.TopupAmountMicros > prof.TopupCapMicros {
		d.TopupCapped = "The monthly cap is reached: no auto top-up is made until " +
			models.MonthlyReset(now).Format("2 January 2006") + " (UTC). Recharge above, or raise the cap."
	}
	last, err := a.Store.LastTopup(ctx, acct)
	if err != nil || last == nil {
		return err
	}
	switch last.Status {
	case models.PaymentFailed, models.PaymentActionRequired:
		d.TopupLastFailure = "The last auto top-up, " + models.FormatUSD(last.AmountMicros) + ", did not go through: " + last.Detail
		d.TopupLastPayment = last.ID
	}
	return nil
}

// savePaymentMethod sends the customer to the provider's checkout in
// setup mode, which saves a card for auto top-up. The account's customer
// at the provider is made the first time.
func (a *App) savePaymentMethod(c echo.Context) error {
	ctx := c.Request().Context()
	prov := a.provider()
	customer, err := a.Store.EnsureCustomer(ctx, currentAccount(c), prov.Name(), func() (string, error) {
		email, err := a.Store.BillingEmail(ctx, currentAccount(c))
		if err != nil {
			return "", err
		}
		return prov.CreateCustomer(ctx, currentAccount(c), email)
	})
	var co *payments.Checkout
	if err == nil {
		base := scheme(c) + "://" + c.Request().Host
		co, err = prov.CreateSetup(ctx, payments.SetupRequest{AccountID: currentAccount(c), CustomerID: customer,
			Success: base + "/billing?card=saved#payment-method", Cancel: base + "/billing?card=cancelled#payment-method"})
	}
	if err != nil {
		a.Log.Error("open card setup", "request_id", RequestID(c), "provider", prov.Name(), "err", err.Error())
		return a.renderBilling(c, http.StatusBadGateway, billingForms{
			Card: "The payment provider could not open the card form. Nothing was saved; try again in a minute."})
	}
	return c.Redirect(http.StatusSeeOther, co.URL)
}

// removePaymentMethod forgets the saved card (and detaches it at the
// provider); auto top-up, which needs it, turns off.
func (a *App) removePaymentMethod(c echo.Context) error {
	ctx := c.Request().Context()
	removed, err := a.Store.RemoveCard(ctx, actor(c), currentAccount(c))
	if err != nil {
		return err
	}
	if removed == nil {
		a.flash(c, "No card is saved.")
		return c.Redirect(http.StatusSeeOther, "/billing#payment-method")
	}
	if prov := a.providerNamed(removed.Provider); prov != nil {
		if err := prov.RemoveCard(ctx, *removed.CardID); err != nil {
			a.Log.Warn("detach card at the provider", "request_id", RequestID(c), "err", err.Error())
		}
	}
	msg := "Card " + removed.CardLabel() + " removed."
	if removed.TopupEnabled {
		msg += " Auto top-up is off: it needs a saved card."
	}
	a.flash(c, msg)
	return c.Redirect(http.StatusSeeOther, "/billing#payment-method")
}

// saveAutoTopup validates and stores the auto top-up settings; bad input
// re-renders Billing with a message beside each field and stores nothing.
func (a *App) saveAutoTopup(c echo.Context) error {
	ctx := c.Request().Context()
	acct := currentAccount(c)
	vals := formValues(c, "enabled", "threshold_usd", "amount_usd", "monthly_cap_usd")
	prof, err := a.Store.BillingProfileOf(ctx, acct)
	if err != nil {
		return err
	}
	cfg, err := models.ValidateTopup(models.TopupSettings{Enabled: vals["enabled"], ThresholdUSD: vals["threshold_usd"],
		AmountUSD: vals["amount_usd"], CapUSD: vals["monthly_cap_usd"]}, prof.HasCard() && prof.Provider == a.provider().Name())
	if fields, msg, ok := fieldErrors(err); ok {
		return a.renderBilling(c, statusOfFormError(err), billingForms{Topup: views.Form{Values: vals, Errors: fields, Message: msg}})
	}
	if err != nil {
		return err
	}
	if err := a.Store.SaveTopup(ctx, actor(c), acct, cfg, prof.Topup()); err != nil {
		return err
	}
	if cfg.Enabled {
		a.flash(c, "Auto top-up is on. "+cfg.Sentence()+".")
		a.kickBilling() // the balance may be below the threshold already
	} else {
		a.flash(c, "Auto top-up is off.")
	}
	return c.Redirect(http.StatusSeeOther, "/billing#auto-topup")
}

// confirmPayment sends the customer to a checkout that finishes an auto
// top-up their bank wanted confirmed: on the checkout page they confirm,
// and its event pays the same payment.
func (a *App) confirmPayment(c echo.Context) error {
	ctx := c.Request().Context()
	p, err := a.Store.PaymentOf(ctx, currentAccount(c), c.Param("id"))
	if err != nil {
		return err
	}
	back := "/billing/payments/" + p.ID
	if !p.IsAutoTopup() || p.Status != models.PaymentActionRequired {
		a.flash(c, "This payment needs no confirmation.")
		return c.Redirect(http.StatusSeeOther, back)
	}
	if p.SessionID != nil && p.CheckoutURL != "" {
		return c.Redirect(http.StatusSeeOther, p.CheckoutURL)
	}
	prov := a.providerNamed(p.Provider)
	if prov == nil {
		a.flash(c, "This payment cannot be confirmed: its provider is not configured here.")
		return c.Redirect(http.StatusSeeOther, back)
	}
	base := scheme(c) + "://" + c.Request().Host
	co, err := prov.CreateCheckout(ctx, p, payments.CheckoutURLs{Success: base + "/billing?payment=" + p.ID + "&checkout=success",
		Cancel: base + back})
	if err != nil {
		a.Log.Error("open checkout to confirm", "request_id", RequestID(c), "payment_id", p.ID, "err", err.Error())
		a.flash(c, "The payment provider could not open a checkout. Nothing was charged; try again in a minute.")
		return c.Redirect(http.StatusSeeOther, back)
	}
	if err := a.Store.AttachCheckout(ctx, p.ID, co.SessionID, co.URL); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, co.URL)
}

// receiptPage is a paid payment's printable receipt; another account's
// payment, or one not paid, is 404.
func (a *App) receiptPage(c echo.Context) error {
	r, err := a.Store.ReceiptOf(c.Request().Context(), currentAccount(c), c.Param("id"))
	if err != nil {
		return err
	}
	p := &r.Payment
	d := views.ReceiptData{Number: r.Number, PaymentID: p.ID, Amount: models.FormatUSD(p.AmountMicros),
		Currency: p.Currency, Method: receiptMethod(p), Item: receiptItem(p), AccountID: r.AccountID, AccountName: r.AccountName,
		BillingEmail: r.BillingEmail, Platform: "TT Console"}
	if p.PaidAt != nil {
		d.Date = p.PaidAt.UTC().Format("2 January 2006, 15:04:05") + " UTC"
	}
	return a.render(c, http.StatusOK, views.Receipt(a.page(c, "Receipt "+r.Number, "billing"), d))
}

// dismissAlert takes an alert off Overview.
func (a *App) dismissAlert(c echo.Context) error {
	if err := a.Store.DismissAlert(c.Request().Context(), currentAccount(c), c.Param("id")); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/")
}
