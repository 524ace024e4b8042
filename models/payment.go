package models

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Payment statuses.
const (
	PaymentPending = "pending"
	PaymentPaid    = "paid"
	PaymentFailed  = "failed"
	PaymentExpired = "expired"
	// PaymentCancelled is a checkout the customer left with Cancel or
	// Back. Should the provider still take the money, the paid event
	// credits it as usual.
	PaymentCancelled = "cancelled"
	// PaymentActionRequired is an auto top-up the card's bank wants the
	// customer to confirm: a Checkout page finishes it.
	PaymentActionRequired = "requires_action"
)

// PaymentStatusLabel names a payment's status as a customer reads it.
func PaymentStatusLabel(status string) string {
	switch status {
	case PaymentPending:
		return "Pending"
	case PaymentPaid:
		return "Paid"
	case PaymentFailed:
		return "Failed"
	case PaymentExpired:
		return "Expired"
	case PaymentCancelled:
		return "Cancelled"
	case PaymentActionRequired:
		return "Needs your confirmation"
	}
	return status
}

// Recharge bounds, in micro-dollars.
const (
	MinRechargeMicros int64 = 5 * MicrosPerUSD
	MaxRechargeMicros int64 = 10_000 * MicrosPerUSD
)

// microsPerCent converts between the providers' cents and micro-dollars.
const microsPerCent int64 = 10_000

// Payment is one recharge through a provider's checkout, or one auto
// top-up charged to the saved card (Kind).
type Payment struct {
	ID            string
	AccountID     string
	Provider      string
	Kind          string // recharge | auto_topup
	SessionID     *string
	CheckoutURL   string
	AmountMicros  int64
	Currency      string
	Status        string
	Detail        string
	LedgerEntryID *string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	PaidAt        *time.Time

	// An auto top-up's PaymentIntent, customer and card; a recharge's
	// card once the provider names it.
	IntentID    *string
	CustomerID  *string
	CardID      *string
	CardBrand   string
	CardLast4   string `gorm:"column:card_last4"`
	FailureCode string // the provider's decline or error code, when it failed
	Attempts    int    // tries to make its PaymentIntent
	LeaseUntil  *time.Time

	// ReceiptNumber is given when it is paid: 1, 2, … per account.
	ReceiptNumber   *int64
	ReceiptMailedAt *time.Time
}

// IsAutoTopup reports whether the payment is an auto top-up.
func (p *Payment) IsAutoTopup() bool { return p.Kind == PaymentAutoTopup }

// Card names the card the payment was charged to, or "".
func (p *Payment) Card() string { return CardLabel(p.CardBrand, p.CardLast4) }

// AmountCents is the payment's amount as providers count it.
func (p *Payment) AmountCents() int64 { return p.AmountMicros / microsPerCent }

// PaymentEventRecord is one provider event as it was received.
type PaymentEventRecord struct {
	EventID    string `gorm:"primaryKey"`
	Provider   string
	Type       string
	SessionID  string
	PaymentID  *string
	Outcome    string
	ReceivedAt time.Time
}

func (PaymentEventRecord) TableName() string { return "payment_events" }

// ParseCents reads a dollar amount typed by a person that must be whole
// cents: ParseUSD's syntax with at most two decimals. ok is false with a
// message for the field otherwise.
func ParseCents(s string) (int64, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, "Enter an amount in dollars, like 25 or 12.50."
	}
	m, ok := ParseUSD(s, false)
	if !ok {
		if strings.HasPrefix(strings.TrimPrefix(s, "$"), "-") {
			return 0, "Enter a positive amount."
		}
		return 0, "Enter an amount in dollars, like 25 or 12.50."
	}
	if m%microsPerCent != 0 {
		return 0, "Use at most two decimals (whole cents)."
	}
	return m, ""
}

// ValidateRecharge checks a recharge amount typed in the amount_usd field
// and returns it in micro-dollars.
func ValidateRecharge(amountUSD string) (int64, error) {
	m, msg := ParseCents(amountUSD)
	switch {
	case msg != "":
	case m < MinRechargeMicros:
		msg = "The smallest recharge is " + FormatUSD(MinRechargeMicros) + "."
	case m > MaxRechargeMicros:
		msg = "The largest recharge is " + FormatUSD(MaxRechargeMicros) + "."
	}
	if msg != "" {
		return 0, FieldErrors{"amount_usd": msg}.Err()
	}
	return m, nil
}

// RechargeFor is the smallest valid recharge that covers need: need rounded
// up to the cent, and at least the minimum recharge.
func RechargeFor(need int64) int64 {
	if need <= 0 {
		return MinRechargeMicros
	}
	cents := (need + microsPerCent - 1) / microsPerCent
	return min(max(cents*microsPerCent, MinRechargeMicros), MaxRechargeMicros)
}

// CreatePayment records a pending recharge of amount for an account,
// before the provider's checkout exists, and its audit entry.
func (s *Store) CreatePayment(ctx context.Context, accountID, provider string, amount int64, by Actor) (*Payment, error) {
	if amount < MinRechargeMicros || amount > MaxRechargeMicros || amount%microsPerCent != 0 {
		return nil, FieldErrors{"amount_usd": "Enter an amount between $5.00 and $10,000.00."}.Err()
	}
	now := time.Now().UTC()
	p := &Payment{ID: s.NewID("pay"), AccountID: accountID, Provider: provider, Kind: PaymentRecharge, AmountMicros: amount,
		Currency: "usd", Status: PaymentPending, CreatedAt: now, UpdatedAt: now}
	err := s.db.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(p).Error; err != nil {
			return err
		}
		return s.auditTx(tx, by, AuditEntry{AccountID: accountID, Action: AuditRechargeStarted, Target: p.ID,
			TargetLabel: rechargeLabel(p), After: PaymentStatusLabel(p.Status)})
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// rechargeLabel names a payment in the audit log: "Recharge $25.00 (stripe)".
func rechargeLabel(p *Payment) string {
	return fmt.Sprintf("Recharge %s (%s)", FormatUSD(p.AmountMicros), p.Provider)
}

// AttachCheckout records the provider's checkout session of a payment.
func (s *Store) AttachCheckout(ctx context.Context, paymentID, sessionID, url string) error {
	return s.db.w.WithContext(ctx).Model(&Payment{}).Where("id = ?", paymentID).Updates(map[string]any{
		"session_id": sessionID, "checkout_url": url, "updated_at": time.Now().UTC(),
	}).Error
}

// AbandonPayment marks a pending payment failed when its checkout could not
// even be created, so the list does not show it waiting forever.
func (s *Store) AbandonPayment(ctx context.Context, paymentID, detail string) error {
	return s.db.w.WithContext(ctx).Model(&Payment{}).Where("id = ? AND status = ?", paymentID, PaymentPending).
		Updates(map[string]any{"status": PaymentFailed, "detail": detail, "updated_at": time.Now().UTC()}).Error
}

// CancelPayment marks an account's pending payment cancelled: its
// customer came back from the checkout through its cancel link. A payment
// that is no longer pending is left as it is; it reports whether this
// call changed it.
func (s *Store) CancelPayment(ctx context.Context, accountID, paymentID string) (bool, error) {
	res := s.db.w.WithContext(ctx).Model(&Payment{}).
		Where("id = ? AND account_id = ? AND status = ?", paymentID, accountID, PaymentPending).
		Updates(map[string]any{"status": PaymentCancelled, "detail": "You cancelled the checkout.", "updated_at": time.Now().UTC()})
	return res.RowsAffected > 0, res.Error
}

// PaymentOf returns one payment of an account; another account's payment is
// ErrNotFound, exactly like a missing one.
func (s *Store) PaymentOf(ctx context.Context, accountID, id string) (*Payment, error) {
	var p Payment
	err := s.db.w.WithContext(ctx).Where("id = ? AND account_id = ?", id, accountID).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	return &p, err
}

// PaymentBySession returns an account's payment by its checkout session id.
func (s *Store) PaymentBySession(ctx context.Context, accountID, sessionID string) (*Payment, error) {
	var p Payment
	err := s.db.w.WithContext(ctx).Where("session_id = ? AND account_id = ?", sessionID, accountID).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	return &p, err
}

// RecentPayments returns an account's latest payments, newest first.
func (s *Store) RecentPayments(ctx context.Context, accountID string, limit int) ([]Payment, error) {
	var out []Payment
	err := s.db.r.WithContext(ctx).Where("account_id = ?", accountID).Order("id DESC").Limit(limit).Find(&out).Error
	return out, err
}

// PaymentEvents returns the provider events recorded for a payment, oldest first.
func (s *Store) PaymentEvents(ctx context.Context, paymentID string) ([]PaymentEventRecord, error) {
	var out []PaymentEventRecord
	err := s.db.r.WithContext(ctx).Where("payment_id = ?", paymentID).Order("received_at, event_id").Find(&out).Error
	return out, err
}

// Provider event types the product acts on.
const (
	EventCheckoutCompleted      = "checkout.session.completed"
	EventAsyncPaymentSucceeded  = "checkout.session.async_payment_succeeded"
	EventAsyncPaymentFailed     = "checkout.session.async_payment_failed"
	EventCheckoutExpired        = "checkout.session.expired"
	EventIntentSucceeded        = "payment_intent.succeeded"
	EventIntentFailed           = "payment_intent.payment_failed"
	EventIntentRequiresAction   = "payment_intent.requires_action"
	EventSetupSucceeded         = "setup_intent.succeeded"
	CheckoutPaymentStatusPaid   = "paid"
	CheckoutPaymentStatusUnpaid = "unpaid"
)

// PaymentEvent is what a provider told us about a checkout session or a
// PaymentIntent.
type PaymentEvent struct {
	ID                string // the provider's event id: recorded once
	Provider          string
	Type              string
	SessionID         string
	ClientReferenceID string // our payment id (an intent's metadata payment_id)
	AmountCents       int64
	Currency          string
	PaymentStatus     string // paid | unpaid | no_payment_required

	IntentID       string // a PaymentIntent's id
	FailureCode    string // last_payment_error.code: card_declined, authentication_required, …
	DeclineCode    string // last_payment_error.decline_code: insufficient_funds, …
	FailureMessage string
	// The card paid with, when the provider said (for the receipt).
	CardBrand, CardLast4 string
}

// isIntentEvent reports whether an event type is about a PaymentIntent.
func isIntentEvent(typ string) bool {
	return typ == EventIntentSucceeded || typ == EventIntentFailed || typ == EventIntentRequiresAction
}

// Outcomes of applying a payment event.
const (
	EventCredited       = "credited"        // this event paid the payment and credited the wallet
	EventDuplicate      = "duplicate"       // the event id was seen before: nothing changed
	EventAlreadyPaid    = "already_paid"    // another event had already paid it
	EventAwaitingFunds  = "awaiting_funds"  // completed, but the money has not arrived yet
	EventMarkedFailed   = "failed"          // the payment failed
	EventMarkedExpired  = "expired"         // the checkout expired unpaid
	EventNoChange       = "no_change"       // a late failure or expiry of a settled payment
	EventUnknownSession = "unknown_session" // not one of our checkouts
	EventMismatch       = "amount_mismatch" // paid a different amount or currency: not credited
	EventIgnored        = "ignored"         // a type we do not act on
	EventNeedsAction    = "requires_action" // the bank wants the customer to confirm the payment
)

// PaymentEventLabel names a provider event type as a customer reads it.
func PaymentEventLabel(typ string) string {
	switch typ {
	case EventCheckoutCompleted:
		return "Checkout completed"
	case EventAsyncPaymentSucceeded:
		return "Payment cleared"
	case EventAsyncPaymentFailed:
		return "Payment failed"
	case EventCheckoutExpired:
		return "Checkout expired"
	case EventIntentSucceeded:
		return "Card charged"
	case EventIntentFailed:
		return "Card charge failed"
	case EventIntentRequiresAction:
		return "Confirmation needed"
	case EventSetupSucceeded:
		return "Card saved"
	}
	return typ
}

// PaymentEventOutcomeLabel says in words what an event did to a payment.
func PaymentEventOutcomeLabel(outcome string) string {
	switch outcome {
	case EventCredited:
		return "Credited to your balance"
	case EventDuplicate:
		return "Seen before: nothing changed"
	case EventAlreadyPaid:
		return "Already paid: nothing changed"
	case EventAwaitingFunds:
		return "Waiting for the payment to clear"
	case EventMarkedFailed:
		return "Marked failed"
	case EventMarkedExpired:
		return "Marked expired"
	case EventNoChange:
		return "Nothing changed"
	case EventUnknownSession:
		return "Not one of your checkouts"
	case EventMismatch:
		return "Amount or currency differs: not credited"
	case EventIgnored:
		return "Not acted on"
	case EventNeedsAction:
		return "Waiting for your confirmation"
	case EventCardSaved:
		return "Card saved"
	case EventCardStale:
		return "A later card is saved: not applied"
	}
	return outcome
}

// PaymentEventResult says what applying an event did.
type PaymentEventResult struct {
	Outcome   string
	PaymentID string
	AccountID string
	Ledger    *LedgerEntry // the recharge, when this event credited the wallet
}

var (
	qInsertPaymentEvent = newQuery(`INSERT INTO payment_events (event_id, provider, type, session_id, received_at, outcome)
		VALUES (?, ?, ?, ?, ?, '') ON CONFLICT (event_id) DO NOTHING`)
	qPaymentEventOutcome = newQuery(`UPDATE payment_events SET outcome = ?, payment_id = ? WHERE event_id = ?`)
	qPaymentSession      = newQuery(`UPDATE payments SET session_id = ? WHERE id = ? AND session_id IS NULL`)
	// A payment is paid once: from pending (which ends an auto top-up's
	// crossing), or, failing that, from any state but paid (the money
	// arrived after all).
	qPaymentPaidPending = newQuery(`UPDATE payments SET status = '` + PaymentPaid + `', detail = '', paid_at = ?, updated_at = ?,
		card_brand = CASE WHEN card_brand = '' THEN ? ELSE card_brand END,
		card_last4 = CASE WHEN card_last4 = '' THEN ? ELSE card_last4 END
		WHERE id = ? AND status = '` + PaymentPending + `'`)
	qPaymentPaid = newQuery(`UPDATE payments SET status = '` + PaymentPaid + `', detail = '', paid_at = ?, updated_at = ?,
		card_brand = CASE WHEN card_brand = '' THEN ? ELSE card_brand END,
		card_last4 = CASE WHEN card_last4 = '' THEN ? ELSE card_last4 END
		WHERE id = ? AND status <> '` + PaymentPaid + `'`)
	// Receipt numbers are counted on the account row, in the crediting
	// transaction: sequential, and never given twice.
	qNextReceipt    = newQuery(`UPDATE accounts SET next_receipt = next_receipt + 1 WHERE id = ? RETURNING next_receipt - 1`)
	qPaymentReceipt = newQuery(`UPDATE payments SET receipt_number = ? WHERE id = ?`)
	qPaymentIntent  = newQuery(`UPDATE payments SET intent_id = ? WHERE id = ? AND intent_id IS NULL`)
	qTopupFailedPay = newQuery(`UPDATE payments SET status = ?, detail = ?, failure_code = ?, updated_at = ?
		WHERE id = ? AND status = '` + PaymentPending + `'`)
	qPaymentLedgerEntry = newQuery(`UPDATE payments SET ledger_entry_id = ? WHERE id = ?`)
	qPaymentPendingNote = newQuery(`UPDATE payments SET detail = ?, updated_at = ?
		WHERE id = ? AND status = '` + PaymentPending + `'`)
	qPaymentUnpaid = newQuery(`UPDATE payments SET status = ?, detail = ?, updated_at = ?
		WHERE id = ? AND status = '` + PaymentPending + `'`)
)

// ApplyPaymentEvent records a provider event and acts on it in one
// transaction: the event id is inserted once (a redelivery is a
// duplicate), and a paid checkout moves its payment to paid with a guarded
// update and credits the ledger in the same transaction. However often, in
// whatever order and however concurrently events about one checkout
// arrive, the wallet is credited at most once: the guarded update lets one
// writer through (on PostgreSQL the second waits on the row lock and then
// finds status already paid; on SQLite writers take turns). A credit's
// audit entry, in the same transaction, is the payment provider's, with
// the address and request id of via, the request that delivered the event.
func (s *Store) ApplyPaymentEvent(ctx context.Context, ev PaymentEvent, via Actor) (*PaymentEventResult, error) {
	if ev.ID == "" || ev.Type == "" {
		return nil, Errorf(EINVALID, "The event has no id or type.")
	}
	var p *Payment
	var err error
	// What a payment is for, and whose, never changes: it is read first,
	// and its status decided by the guarded updates.
	switch ev.Type {
	case EventCheckoutCompleted, EventAsyncPaymentSucceeded, EventAsyncPaymentFailed, EventCheckoutExpired:
		p, err = s.paymentForEvent(ctx, ev)
	case EventIntentSucceeded, EventIntentFailed, EventIntentRequiresAction:
		p, err = s.paymentForIntent(ctx, ev)
	}
	if err != nil {
		return nil, err
	}
	var res PaymentEventResult
	err = s.write(ctx, func(w *wtx) error {
		res = PaymentEventResult{}
		now := time.Now().UTC()
		n, err := w.exec(qInsertPaymentEvent, ev.ID, ev.Provider, ev.Type, ev.SessionID, now)
		if err != nil {
			return err
		}
		if n == 0 {
			res.Outcome = EventDuplicate
			return nil
		}
		if res.Outcome, err = applyPaymentEvent(w, ev, p, &res, via, now); err != nil {
			return err
		}
		var paymentID *string
		if res.PaymentID != "" {
			paymentID = &res.PaymentID
		}
		return w.later(qPaymentEventOutcome, res.Outcome, paymentID, ev.ID)
	})
	if err != nil {
		return nil, err
	}
	return &res, nil
}

// applyPaymentEvent acts on an event about payment p (nil: none is known)
// and returns the outcome.
func applyPaymentEvent(w *wtx, ev PaymentEvent, p *Payment, res *PaymentEventResult, via Actor, now time.Time) (string, error) {
	switch ev.Type {
	case EventCheckoutCompleted, EventAsyncPaymentSucceeded, EventAsyncPaymentFailed, EventCheckoutExpired,
		EventIntentSucceeded, EventIntentFailed, EventIntentRequiresAction:
	default:
		return EventIgnored, nil
	}
	if p == nil {
		return EventUnknownSession, nil
	}
	res.PaymentID, res.AccountID = p.ID, p.AccountID
	if ev.SessionID != "" && p.SessionID == nil {
		if err := w.later(qPaymentSession, ev.SessionID, p.ID); err != nil {
			return "", err
		}
	}
	if isIntentEvent(ev.Type) && ev.IntentID != "" && p.IntentID == nil {
		if err := w.later(qPaymentIntent, ev.IntentID, p.ID); err != nil {
			return "", err
		}
	}

	paid := ev.Type == EventAsyncPaymentSucceeded || ev.Type == EventIntentSucceeded ||
		ev.Type == EventCheckoutCompleted && ev.PaymentStatus == CheckoutPaymentStatusPaid
	switch {
	case paid:
		if ev.AmountCents*microsPerCent != p.AmountMicros || !strings.EqualFold(ev.Currency, p.Currency) {
			return EventMismatch, nil
		}
		return markPaid(w, ev, p, res, via, now)
	case isIntentEvent(ev.Type):
		return failTopup(w, ev, p, now)
	case ev.Type == EventCheckoutCompleted:
		return EventAwaitingFunds, w.later(qPaymentPendingNote, "Checkout completed; waiting for the payment to clear.", now, p.ID)
	case ev.Type == EventAsyncPaymentFailed:
		return settleUnpaid(w, p.ID, PaymentFailed, EventMarkedFailed, "The payment failed at the provider.", now)
	default: // expired
		return settleUnpaid(w, p.ID, PaymentExpired, EventMarkedExpired, "The checkout expired before it was paid.", now)
	}
}

// markPaid moves p to paid, once, and credits the wallet through the
// ledger, with the payment's receipt number, in the event's transaction.
// An auto top-up paid from pending ends its crossing (finishTopup).
func markPaid(w *wtx, ev PaymentEvent, p *Payment, res *PaymentEventResult, via Actor, now time.Time) (string, error) {
	n, err := w.exec(qPaymentPaidPending, now, now, ev.CardBrand, ev.CardLast4, p.ID)
	if err != nil {
		return "", err
	}
	fromPending := n == 1
	if !fromPending {
		if n, err = w.exec(qPaymentPaid, now, now, ev.CardBrand, ev.CardLast4, p.ID); err != nil {
			return "", err
		}
		if n == 0 {
			return EventAlreadyPaid, nil
		}
	}
	receipt, err := w.queryInt(qNextReceipt, p.AccountID)
	if err != nil {
		return "", err
	}
	if err := w.later(qPaymentReceipt, receipt, p.ID); err != nil {
		return "", err
	}
	memo := rechargeLabel(p)
	if p.IsAutoTopup() {
		memo = "Auto top-up " + FormatUSD(p.AmountMicros)
		if c := p.Card(); c != "" {
			memo += " (" + c + ")"
		}
	}
	e, err := credit(w, p.AccountID, p.AmountMicros, LedgerRecharge, memo, LedgerRef{PaymentID: p.ID}, now)
	if err != nil {
		return "", err
	}
	res.Ledger = e
	if err := w.later(qPaymentLedgerEntry, e.ID, p.ID); err != nil {
		return "", err
	}
	provider := Actor{Name: ActorPaymentProvider, IP: via.IP, RequestID: via.RequestID}
	err = auditW(w, provider, AuditEntry{AccountID: p.AccountID, Action: AuditPaymentCredited, Target: p.ID,
		TargetLabel: memo, Before: PaymentStatusLabel(p.Status), After: PaymentStatusLabel(PaymentPaid)})
	if err != nil {
		return "", err
	}
	if p.IsAutoTopup() && fromPending {
		if err := finishTopup(w, p, true, now); err != nil {
			return "", err
		}
	}
	return EventCredited, nil
}

// failTopup records that an auto top-up's PaymentIntent failed: declined
// (failed, with the reason), or held for the customer's confirmation
// (requires_action, with a link to finish it). Only a pending top-up
// fails, once; a late failure of a paid one changes nothing.
func failTopup(w *wtx, ev PaymentEvent, p *Payment, now time.Time) (string, error) {
	if !p.IsAutoTopup() {
		return EventNoChange, nil
	}
	code := cmp.Or(ev.DeclineCode, ev.FailureCode)
	status, outcome, detail := PaymentFailed, EventMarkedFailed, DeclineReason(ev.FailureCode, ev.DeclineCode, ev.FailureMessage)
	alert := alertTopupDeclined(p, detail)
	if ev.Type == EventIntentRequiresAction || ev.FailureCode == CodeAuthenticationRequired || ev.DeclineCode == CodeAuthenticationRequired {
		status, outcome, code = PaymentActionRequired, EventNeedsAction, CodeAuthenticationRequired
		detail = "Your card's bank asks you to confirm this payment: open it and choose Confirm to finish paying."
		alert = alertTopupAction(p)
	}
	n, err := w.exec(qTopupFailedPay, status, detail, code, now, p.ID)
	if err != nil || n == 0 {
		return EventNoChange, err
	}
	if err := insertAlert(w, p.AccountID, alert, now); err != nil {
		return "", err
	}
	return outcome, finishTopup(w, p, false, now)
}

// CodeAuthenticationRequired is the provider's code for a card payment
// the customer's bank wants confirmed by the customer.
const CodeAuthenticationRequired = "authentication_required"

// DeclineReason says in words why a card was declined.
func DeclineReason(code, declineCode, message string) string {
	reasons := map[string]string{
		"insufficient_funds":              "insufficient funds",
		"expired_card":                    "the card has expired",
		"lost_card":                       "the card was reported lost",
		"stolen_card":                     "the card was reported stolen",
		"incorrect_cvc":                   "the security code is incorrect",
		"processing_error":                "the card's bank could not process it; it may work later",
		"do_not_honor":                    "the card's bank refused it",
		"generic_decline":                 "the card's bank refused it",
		"card_velocity_exceeded":          "the card's limit was reached",
		"card_declined":                   "the card's bank refused it",
		"card_not_supported":              "the card does not support this payment",
		"currency_not_supported":          "the card does not support US dollars",
		"fraudulent":                      "the card's bank suspected fraud",
		"withdrawal_count_limit_exceeded": "the card's limit was reached",
	}
	c := cmp.Or(declineCode, code)
	why, ok := reasons[c]
	if !ok {
		why = cmp.Or(strings.TrimSuffix(message, "."), "the card's bank refused it")
	}
	if c == "" {
		return "Declined: " + why + "."
	}
	return "Declined: " + why + " (" + c + ")."
}

// paymentForIntent finds the top-up a PaymentIntent event is about: by
// the intent, or, before its id was stored, by the payment id in its
// metadata. nil: none (a Checkout's own PaymentIntent, say).
func (s *Store) paymentForIntent(ctx context.Context, ev PaymentEvent) (*Payment, error) {
	return s.paymentBy(ctx, ev, "intent_id", ev.IntentID, " AND kind = ?", PaymentAutoTopup)
}

// paymentForEvent finds the payment an event is about: by its checkout
// session, or, before the session id was stored, by the client reference
// (our payment id) of a payment that has no session yet. nil: none.
func (s *Store) paymentForEvent(ctx context.Context, ev PaymentEvent) (*Payment, error) {
	return s.paymentBy(ctx, ev, "session_id", ev.SessionID, "")
}

// paymentBy finds the payment whose provider id column col is id, or,
// when none is (or id is empty), the one the event's client reference
// names among the provider's payments whose col is not set yet, narrowed
// by more and its arguments. nil: none.
func (s *Store) paymentBy(ctx context.Context, ev PaymentEvent, col, id, more string, args ...any) (*Payment, error) {
	db := s.db.w.WithContext(ctx)
	var p Payment
	if id != "" {
		err := db.Where(col+" = ?", id).Take(&p).Error
		if err == nil {
			return &p, nil
		}
		if !errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, err
		}
	}
	if ev.ClientReferenceID == "" {
		return nil, nil
	}
	err := db.Where("id = ? AND provider = ? AND "+col+" IS NULL"+more,
		append([]any{ev.ClientReferenceID, ev.Provider}, args...)...).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// settleUnpaid ends a pending payment without money; a payment already
// paid (the success arrived first) is never taken back by a late event.
func settleUnpaid(w *wtx, id, status, outcome, detail string, now time.Time) (string, error) {
	n, err := w.exec(qPaymentUnpaid, status, detail, now, id)
	if err != nil {
		return "", err
	}
	if n == 0 {
		return EventNoChange, nil
	}
	return outcome, nil
}
