package handlers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"ttconsole/internal/payments"
	"ttconsole/models"
)

// billingState is the billing worker's own state.
type billingState struct {
	kick     chan struct{} // a round now, rather than at the next tick
	lastKeys atomic.Int64  // when key limits were last looked at (Unix nanoseconds)
	started  atomic.Bool   // the first round ran: charged top-ups were re-checked
}

// Billing worker limits.
const (
	billingBatch = 100
	// A top-up whose PaymentIntent could not be made is tried again after
	// TopupChargeRetry, doubled for each attempt, at most maxChargeRetry;
	// after maxChargeAttempts it fails.
	maxChargeRetry    = time.Hour
	maxChargeAttempts = 8
)

// kickBilling asks the worker for a round now.
func (a *App) kickBilling() {
	select {
	case a.billing.kick <- struct{}{}:
	default:
	}
}

// runBilling runs billing rounds until ctx ends.
func (a *App) runBilling(ctx context.Context) {
	if a.BillingPoll < 0 {
		return
	}
	t := time.NewTicker(a.BillingPoll)
	defer t.Stop()
	for {
		a.BillingRound(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.billing.kick:
		}
	}
}

// BillingRound does billing's background work once: it starts the auto
// top-ups of wallets that crossed their threshold and charges them,
// re-checks charged ones whose outcome is late, makes low-balance and
// key-limit alerts, and mails alerts and receipts. Every step is guarded
// in the database, so rounds may run at once here and on other instances.
func (a *App) BillingRound(ctx context.Context) {
	now := time.Now()
	a.startTopups(ctx, now)
	a.chargeOpenTopups(ctx, now)
	recheckBefore := now.Add(-a.TopupRecheck)
	if a.billing.started.CompareAndSwap(false, true) {
		// After a restart, every charged top-up still pending is asked
		// about now: its outcome may have been lost with the instance.
		recheckBefore = now
	}
	a.recheckTopups(ctx, recheckBefore)
	if _, err := a.Store.TakeLowBalanceAlerts(ctx, billingBatch); err != nil && ctx.Err() == nil {
		a.Log.Error("low-balance alerts", "err", err.Error())
	}
	keyEvery := 5 * a.BillingPoll // a join of the month's keys: less often than the rest; every round when rounds are called
	if keyEvery < 0 {
		keyEvery = 0
	}
	if last := a.billing.lastKeys.Load(); now.UnixNano()-last >= int64(keyEvery) && a.billing.lastKeys.CompareAndSwap(last, now.UnixNano()) {
		if _, err := a.Store.TakeKeyLimitAlerts(ctx, now); err != nil && ctx.Err() == nil {
			a.Log.Error("key limit alerts", "err", err.Error())
		}
	}
	a.mailAlerts(ctx)
	a.mailReceipts(ctx)
}

// startTopups claims the due crossings and charges their top-ups.
func (a *App) startTopups(ctx context.Context, now time.Time) {
	due, err := a.Store.DueTopups(ctx, now, billingBatch)
	if err != nil {
		if ctx.Err() == nil {
			a.Log.Error("due top-ups", "err", err.Error())
		}
		return
	}
	for _, acct := range due {
		st, err := a.Store.StartTopup(ctx, acct, a.provider().Name(), now, a.TopupBackoff)
		if err != nil {
			a.Log.Error("start top-up", "account_id", acct, "err", err.Error())
			continue
		}
		switch st.Outcome {
		case models.TopupStarted:
			a.Log.Info("auto top-up started", "account_id", acct, "payment_id", st.Payment.ID, "amount_micros", st.Payment.AmountMicros)
			a.chargeTopup(ctx, st.Payment)
		case models.TopupCapped:
			a.Log.Info("auto top-up capped for the month", "account_id", acct)
		case models.TopupWaiting:
			a.Log.Info("auto top-up waits after failures", "account_id", acct, "not_before", st.NotBefore)
		}
	}
}

// chargeOpenTopups charges the top-ups started but not charged: their
// worker stopped, or the provider did not answer.
func (a *App) chargeOpenTopups(ctx context.Context, now time.Time) {
	open, err := a.Store.OpenTopups(ctx, now, billingBatch)
	if err != nil {
		if ctx.Err() == nil {
			a.Log.Error("open top-ups", "err", err.Error())
		}
		return
	}
	for i := range open {
		a.chargeTopup(ctx, &open[i])
	}
}

// chargeTopup makes the top-up's off-session PaymentIntent and acts on
// what the provider answers. The idempotency key is the payment's, so a
// second try (after a restart, a timeout) finds the same PaymentIntent
// and never charges twice.
func (a *App) chargeTopup(ctx context.Context, p *models.Payment) {
	now := time.Now()
	retry := min(a.TopupChargeRetry<<min(p.Attempts, 10), maxChargeRetry)
	if ok, err := a.Store.LeaseTopup(ctx, p.ID, now, now.Add(retry)); err != nil || !ok {
		if err != nil {
			a.Log.Error("lease top-up", "payment_id", p.ID, "err", err.Error())
		}
		return
	}
	prov := a.providerNamed(p.Provider)
	if prov == nil || p.CustomerID == nil || p.CardID == nil {
		a.refuseTopup(ctx, p, "The payment provider of this card is not configured here.")
		return
	}
	in, err := prov.Charge(ctx, payments.ChargeRequest{PaymentID: p.ID, AccountID: p.AccountID, CustomerID: *p.CustomerID,
		PaymentMethodID: *p.CardID, AmountCents: p.AmountCents(), Currency: p.Currency, IdempotencyKey: "topup-" + p.ID,
		Description: "TT wallet auto top-up " + models.FormatUSD(p.AmountMicros)})
	if err != nil {
		var ce *payments.ChargeError
		if errors.As(err, &ce) && ce.Permanent || p.Attempts+1 >= maxChargeAttempts {
			a.Log.Error("auto top-up refused by the provider", "payment_id", p.ID, "err", err.Error())
			a.refuseTopup(ctx, p, "The payment provider refused the charge.")
			return
		}
		a.Log.Warn("auto top-up: the provider did not answer; trying again later", "payment_id", p.ID,
			"retry_in", retry.String(), "err", err.Error())
		return
	}
	if err := a.Store.AttachIntent(ctx, p.ID, in.ID); err != nil {
		a.Log.Error("attach payment intent", "payment_id", p.ID, "intent_id", in.ID, "err", err.Error())
	}
	if in.PaymentID == "" {
		in.PaymentID = p.ID
	}
	if p.Provider == payments.ProviderTest {
		// The test provider plays Stripe: its events go to the webhook.
		err = a.deliverIntentEvent(ctx, in)
	} else {
		_, err = a.applyIntent(ctx, p.Provider, in, "charge")
	}
	if err != nil {
		a.Log.Error("auto top-up outcome", "payment_id", p.ID, "intent_id", in.ID, "err", err.Error())
	}
}

// refuseTopup fails a top-up that could not be charged at all, through
// the same code as a decline.
func (a *App) refuseTopup(ctx context.Context, p *models.Payment, why string) {
	_, err := a.Store.ApplyPaymentEvent(ctx, models.PaymentEvent{ID: "charge:" + p.ID + ":refused", Provider: p.Provider,
		Type: models.EventIntentFailed, ClientReferenceID: p.ID, FailureCode: "charge_refused", FailureMessage: why}, models.Actor{})
	if err != nil {
		a.Log.Error("fail top-up", "payment_id", p.ID, "err", err.Error())
	}
}

// applyIntent applies what a provider says of a PaymentIntent, as an
// event of its own (one id per intent and status, so it counts once),
// through the same code as the webhook's events. A PaymentIntent still
// processing changes nothing.
func (a *App) applyIntent(ctx context.Context, provider string, in *payments.Intent, source string) (*models.PaymentEventResult, error) {
	typ := intentEventType(in)
	if typ == "" {
		return &models.PaymentEventResult{Outcome: models.EventNoChange}, nil
	}
	return a.Store.ApplyPaymentEvent(ctx, models.PaymentEvent{ID: source + ":" + in.ID + ":" + in.Status, Provider: provider,
		Type: typ, ClientReferenceID: in.PaymentID, IntentID: in.ID, AmountCents: in.AmountCents, Currency: in.Currency,
		FailureCode: in.ErrorCode, DeclineCode: in.DeclineCode, FailureMessage: in.ErrorMessage,
		CardBrand: in.CardBrand, CardLast4: in.CardLast4}, models.Actor{})
}

// intentEventType is the event Stripe sends for a PaymentIntent's status.
func intentEventType(in *payments.Intent) string {
	switch in.Status {
	case "succeeded":
		return models.EventIntentSucceeded
	case "requires_action":
		return models.EventIntentRequiresAction
	case "requires_payment_method", "canceled":
		return models.EventIntentFailed
	}
	return ""
}

// recheckTopups asks the provider about charged top-ups whose outcome
// has not arrived since before.
func (a *App) recheckTopups(ctx context.Context, before time.Time) {
	stale, err := a.Store.StaleTopups(ctx, before, billingBatch)
	if err != nil {
		if ctx.Err() == nil {
			a.Log.Error("stale top-ups", "err", err.Error())
		}
		return
	}
	for _, p := range stale {
		prov := a.providerNamed(p.Provider)
		if prov == nil {
			continue
		}
		in, err := prov.Intent(ctx, *p.IntentID)
		if err == nil {
			if in.PaymentID == "" {
				in.PaymentID = p.ID
			}
			var res *models.PaymentEventResult
			if res, err = a.applyIntent(ctx, p.Provider, in, "recheck"); err == nil && res.Outcome == models.EventCredited {
				a.Log.Info("auto top-up credited on re-check", "payment_id", p.ID, "intent_id", in.ID)
			}
		}
		if err != nil {
			a.Log.Warn("re-check top-up", "payment_id", p.ID, "err", err.Error())
		}
		if err := a.Store.TouchPayment(ctx, p.ID); err != nil {
			a.Log.Error("touch payment", "payment_id", p.ID, "err", err.Error())
		}
	}
}

// billingRecipients are the people billing mail goes to: the account's
// owner and billing members.
func (a *App) billingRecipients(ctx context.Context, accountID string) []string {
	to, err := a.Store.BillingEmails(ctx, accountID)
	if err != nil {
		a.Log.Error("billing recipients", "account_id", accountID, "err", err.Error())
		return nil
	}
	return to
}

// notify sends one mail of billing's and shows it to MailObserver.
func (a *App) notify(ctx context.Context, to, subject, text string) error {
	if err := a.sendMail(ctx, to, subject, text); err != nil {
		return err
	}
	if a.MailObserver != nil {
		a.MailObserver(to, subject, text)
	}
	return nil
}

// mailAlerts mails every alert not mailed yet, once: whoever claims it
// sends it, and gives it back when sending failed.
func (a *App) mailAlerts(ctx context.Context) {
	alerts, err := a.Store.UnmailedAlerts(ctx, billingBatch)
	if err != nil {
		if ctx.Err() == nil {
			a.Log.Error("alerts to mail", "err", err.Error())
		}
		return
	}
	for _, al := range alerts {
		if ok, err := a.Store.ClaimAlertMail(ctx, al.ID); err != nil || !ok {
			continue
		}
		text := al.Body + "\n"
		if al.Link != "" {
			text += "\n" + a.link(al.Link) + "\n"
		}
		text += "\n— TT Console\n"
		to := a.billingRecipients(ctx, al.AccountID)
		if al.KeyID != nil { // a key's alert goes to its creator too
			creator, err := a.Store.KeyCreatorEmail(ctx, al.AccountID, *al.KeyID)
			if err != nil {
				a.Log.Error("key creator", "alert_id", al.ID, "err", err.Error())
			} else if creator != "" && !slices.Contains(to, creator) {
				to = append(to, creator)
			}
		}
		if err := a.mailAll(ctx, to, al.Title, text); err != nil {
			a.Log.Error("mail alert", "alert_id", al.ID, "err", err.Error())
			a.Store.ReleaseAlertMail(ctx, al.ID)
		}
	}
}

// mailReceipts mails the receipt of every payment credited and not
// mailed yet, once.
func (a *App) mailReceipts(ctx context.Context) {
	receipts, err := a.Store.UnmailedReceipts(ctx, billingBatch)
	if err != nil {
		if ctx.Err() == nil {
			a.Log.Error("receipts to mail", "err", err.Error())
		}
		return
	}
	for _, r := range receipts {
		if ok, err := a.Store.ClaimReceiptMail(ctx, r.Payment.ID); err != nil || !ok {
			continue
		}
		subject := "Receipt " + r.Number + " from TT Console: " + models.FormatUSD(r.Payment.AmountMicros)
		if err := a.mailAll(ctx, a.billingRecipients(ctx, r.AccountID), subject, a.receiptText(&r)); err != nil {
			a.Log.Error("mail receipt", "payment_id", r.Payment.ID, "err", err.Error())
			a.Store.ReleaseReceiptMail(ctx, r.Payment.ID)
		}
	}
}

func (a *App) mailAll(ctx context.Context, to []string, subject, text string) error {
	var errs []error
	for _, addr := range to {
		if err := a.notify(ctx, addr, subject, text); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		}
	}
	return errors.Join(errs...)
}

// receiptText is a receipt as a mail says it.
func (a *App) receiptText(r *models.Receipt) string {
	p := &r.Payment
	var b strings.Builder
	fmt.Fprintf(&b, "TT Console: receipt %s\n\n", r.Number)
	fmt.Fprintf(&b, "Receipt number: %s\n", r.Number)
	if p.PaidAt != nil {
		fmt.Fprintf(&b, "Date: %s\n", p.PaidAt.UTC().Format("2 January 2006 15:04:05 UTC"))
	}
	fmt.Fprintf(&b, "Amount paid: %s (%s)\n", models.FormatUSD(p.AmountMicros), strings.ToUpper(p.Currency))
	fmt.Fprintf(&b, "Paid with: %s\n", receiptMethod(p))
	fmt.Fprintf(&b, "For: %s\n", receiptItem(p))
	fmt.Fprintf(&b, "Account: %s (%s)\n", r.AccountName, r.AccountID)
	fmt.Fprintf(&b, "Billing email: %s\n", r.BillingEmail)
	fmt.Fprintf(&b, "Payment: %s\n\n", p.ID)
	fmt.Fprintf(&b, "View or print it: %s\n\n— TT Console\n", a.link("/billing/payments/"+p.ID+"/receipt"))
	return b.String()
}

// receiptMethod names how a payment was paid, for its receipt.
func receiptMethod(p *models.Payment) string {
	if c := p.Card(); c != "" {
		return c
	}
	if p.Provider == payments.ProviderTest {
		return "Test checkout (no card)"
	}
	return "Card via " + providerLabel(p.Provider)
}

// receiptItem says what a payment bought.
func receiptItem(p *models.Payment) string {
	if p.IsAutoTopup() {
		return "Auto top-up of the prepaid TT wallet"
	}
	return "Recharge of the prepaid TT wallet"
}
