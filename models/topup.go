package models

import (
	"context"
	"errors"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Auto top-up: when a hold takes a wallet's available balance below the
// account's threshold, its saved card is charged a set amount, once for
// that crossing. The crossing is decided on the wallet row, by the hold's
// own UPDATE (crossings), so however many calls and instances cross at
// once, one of them flips the state from armed to due; a worker then
// claims the due wallet (due to charging, again one guarded update) and
// records the top-up as a pending payment, which the provider's
// PaymentIntent events pay or fail like any payment (payment.go).

// Auto top-up states of a wallet (wallets.topup_state).
const (
	TopupArmed    = "armed"    // a crossing starts a top-up
	TopupDue      = "due"      // crossed: the worker starts one
	TopupCharging = "charging" // one is under way
	TopupSpent    = "spent"    // this crossing had its top-up; a credit above the threshold arms it again
)

// Low-balance warning states of a wallet (wallets.low_state).
const (
	LowArmed = "armed"
	LowDue   = "due"
	LowSent  = "sent"
)

// TopupPauseAfter is how many top-ups in a row may fail before auto
// top-up pauses itself.
const TopupPauseAfter = 3

// crossings is the SET clause that moves a wallet's auto top-up and
// low-balance states from armed to due when the update leaves its
// available balance (after, an expression of the row as it was) below a
// threshold. A NULL threshold (off) compares as unknown: nothing moves.
// It costs the update two comparisons and no statement of its own.
func crossings(after string) string {
	return `, topup_state = CASE WHEN topup_state = 'armed' AND ` + after + ` < topup_threshold_micros THEN 'due' ELSE topup_state END` +
		`, low_state = CASE WHEN low_state = 'armed' AND ` + after + ` < low_balance_micros THEN 'due' ELSE low_state END`
}

// crossingsOrRearm is crossings for a credit or an adjustment, which also
// ends a crossing: money was added and the available balance is back at
// the threshold or above, so the state is armed again (a crossing whose
// top-up has not started yet needs none any more). Only money added
// re-arms: a hold released is the same crossing going on, and a top-up
// that failed is not tried again for it.
func crossingsOrRearm(after string) string {
	return `, topup_state = CASE WHEN topup_state = 'armed' AND ` + after + ` < topup_threshold_micros THEN 'due'
		WHEN topup_state IN ('spent', 'due') AND ` + after + ` >= topup_threshold_micros THEN 'armed' ELSE topup_state END` +
		`, low_state = CASE WHEN low_state = 'armed' AND ` + after + ` < low_balance_micros THEN 'due'
		WHEN low_state = 'sent' AND ` + after + ` >= low_balance_micros THEN 'armed' ELSE low_state END`
}

// BillingProfile is an account's customer at the payment provider, its
// saved card and its auto top-up settings.
type BillingProfile struct {
	AccountID            string `gorm:"primaryKey"`
	Provider             string
	CustomerID           *string
	CardID               *string
	CardBrand            string
	CardLast4            string `gorm:"column:card_last4"`
	CardExpMonth         int
	CardExpYear          int
	CardSetAt            *time.Time
	TopupEnabled         bool
	TopupThresholdMicros int64
	TopupAmountMicros    int64
	TopupCapMicros       int64
	TopupFailures        int
	TopupFailedAt        *time.Time
	TopupPausedAt        *time.Time
	UpdatedAt            time.Time
}

func (BillingProfile) TableName() string { return "billing_profiles" }

// HasCard reports whether a card is saved.
func (p *BillingProfile) HasCard() bool { return p.CardID != nil && *p.CardID != "" }

// CardLabel names the saved card as a customer reads it: "Visa •••• 4242".
func (p *BillingProfile) CardLabel() string { return CardLabel(p.CardBrand, p.CardLast4) }

// CardLabel names a card by its brand and last four digits.
func CardLabel(brand, last4 string) string {
	if last4 == "" {
		return ""
	}
	return BrandLabel(brand) + " •••• " + last4
}

// BrandLabel names a card brand as printed on cards.
func BrandLabel(brand string) string {
	switch strings.ToLower(brand) {
	case "visa":
		return "Visa"
	case "mastercard":
		return "Mastercard"
	case "amex":
		return "American Express"
	case "discover":
		return "Discover"
	case "":
		return "Card"
	}
	return strings.ToUpper(brand[:1]) + brand[1:]
}

// TopupActive reports whether auto top-up is on and not paused.
func (p *BillingProfile) TopupActive() bool {
	return p.TopupEnabled && p.TopupPausedAt == nil && p.HasCard()
}

// BillingProfileOf returns an account's billing profile; an account
// without one gets an empty profile.
func (s *Store) BillingProfileOf(ctx context.Context, accountID string) (*BillingProfile, error) {
	var p BillingProfile
	err := s.db.w.WithContext(ctx).Where("account_id = ?", accountID).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return &BillingProfile{AccountID: accountID}, nil
	}
	return &p, err
}

// AccountByCustomer returns the account whose provider customer this is.
func (s *Store) AccountByCustomer(ctx context.Context, customerID string) (string, error) {
	var p BillingProfile
	err := s.db.w.WithContext(ctx).Select("account_id").Where("customer_id = ?", customerID).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return "", ErrNotFound
	}
	return p.AccountID, err
}

// EnsureCustomer returns the account's customer at provider, making it
// with create the first time. Two first times at once keep the customer
// stored first (create is idempotent at the provider for one account).
// A customer of another provider (the configuration changed) is replaced,
// with its card, which that provider cannot charge.
func (s *Store) EnsureCustomer(ctx context.Context, accountID, provider string, create func() (string, error)) (string, error) {
	p, err := s.BillingProfileOf(ctx, accountID)
	if err != nil {
		return "", err
	}
	if p.CustomerID != nil && p.Provider == provider {
		return *p.CustomerID, nil
	}
	id, err := create()
	if err != nil {
		return "", err
	}
	now := time.Now().UTC()
	db := s.db.w.WithContext(ctx)
	err = db.Exec(`INSERT INTO billing_profiles (account_id, provider, customer_id, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (account_id) DO UPDATE SET provider = excluded.provider, customer_id = excluded.customer_id,
		card_id = NULL, card_brand = '', card_last4 = '', card_exp_month = 0, card_exp_year = 0, updated_at = excluded.updated_at
		WHERE billing_profiles.customer_id IS NULL OR billing_profiles.provider <> excluded.provider`,
		accountID, provider, id, now).Error
	if err != nil {
		return "", err
	}
	if p, err = s.BillingProfileOf(ctx, accountID); err != nil {
		return "", err
	}
	if p.CustomerID == nil {
		return "", errors.New("billing profile: customer not stored")
	}
	return *p.CustomerID, nil
}

// SavedCard is a card a provider says a customer saved.
type SavedCard struct {
	ID, Brand, Last4  string
	ExpMonth, ExpYear int
	// SetupAt is when the setup that saved it was made: a later setup
	// wins over an earlier one, whatever order their events come in.
	SetupAt time.Time
}

// CardEvent is a provider event that saved a card to a customer.
type CardEvent struct {
	ID, Provider, Type, SessionID string
	CustomerID                    string
	Card                          SavedCard
}

// Outcomes of a card event.
const (
	EventCardSaved = "card_saved" // the card is now the account's
	EventCardStale = "card_stale" // a later card (or its removal) is already recorded
)

var (
	qSaveCard = newQuery(`UPDATE billing_profiles SET card_id = ?, card_brand = ?, card_last4 = ?, card_exp_month = ?,
		card_exp_year = ?, card_set_at = ?, updated_at = ? WHERE account_id = ? AND customer_id = ?
		AND (card_set_at IS NULL OR card_set_at <= ?)`)
	qSameCard = newQuery(`SELECT COUNT(*) FROM billing_profiles WHERE account_id = ? AND card_id = ?`)
)

// ApplyCardEvent records a card-saving event once, by its id, and stores
// the card on the customer's account, unless a later setup or a removal
// is already recorded; the audit log has the card saved, by the payment
// provider through via (the webhook's request), in the same write.
// accountID is "" for a customer that is not ours.
func (s *Store) ApplyCardEvent(ctx context.Context, ev CardEvent, via Actor) (outcome, accountID string, _ error) {
	if ev.ID == "" || ev.Type == "" {
		return "", "", Errorf(EINVALID, "The event has no id or type.")
	}
	acct, err := s.AccountByCustomer(ctx, ev.CustomerID)
	if err != nil && err != ErrNotFound {
		return "", "", err
	}
	err = s.write(ctx, func(w *wtx) error {
		now := time.Now().UTC()
		n, err := w.exec(qInsertPaymentEvent, ev.ID, ev.Provider, ev.Type, ev.SessionID, now)
		if err != nil {
			return err
		}
		if n == 0 {
			outcome = EventDuplicate
			return nil
		}
		switch {
		case acct == "" || ev.Card.ID == "":
			outcome = EventUnknownSession
		default:
			c := ev.Card
			same, err := w.queryInt(qSameCard, acct, c.ID)
			if err != nil {
				return err
			}
			if same == 1 {
				outcome = EventCardSaved // both events of one setup
				break
			}
			setup := c.SetupAt.UTC()
			n, err := w.exec(qSaveCard, c.ID, c.Brand, c.Last4, c.ExpMonth, c.ExpYear, setup, now, acct, ev.CustomerID, setup)
			if err != nil {
				return err
			}
			outcome = EventCardStale
			if n == 1 {
				outcome = EventCardSaved
				provider := Actor{Name: ActorPaymentProvider, IP: via.IP, RequestID: via.RequestID}
				err := auditW(w, provider, AuditEntry{AccountID: acct, Action: AuditCardSaved, Field: "card",
					After: CardLabel(c.Brand, c.Last4)})
				if err != nil {
					return err
				}
			}
		}
		return w.later(qPaymentEventOutcome, outcome, nil, ev.ID)
	})
	if err != nil {
		return "", "", err
	}
	return outcome, acct, nil
}

var (
	qRemoveCard = newQuery(`UPDATE billing_profiles SET card_id = NULL, card_brand = '', card_last4 = '', card_exp_month = 0,
		card_exp_year = 0, card_set_at = ?, topup_enabled = FALSE, updated_at = ? WHERE account_id = ?`)
	qTopupOff = newQuery(`UPDATE wallets SET topup_threshold_micros = NULL, topup_not_before = NULL,
		topup_state = CASE WHEN topup_state = 'charging' THEN 'charging' ELSE 'armed' END WHERE account_id = ?`)
)

// RemoveCard forgets the account's saved card and turns auto top-up off,
// which needs one. It returns the card removed (nil: none was saved). A
// setup made before this moment never brings the card back.
func (s *Store) RemoveCard(ctx context.Context, by Actor, accountID string) (*BillingProfile, error) {
	p, err := s.BillingProfileOf(ctx, accountID)
	if err != nil || !p.HasCard() {
		return nil, err
	}
	// Seconds, as providers date a setup: a setup made after the removal,
	// even within its second, still saves its card.
	now := time.Now().UTC()
	err = s.write(ctx, func(w *wtx) error {
		if err := w.later(qTopupOff, accountID); err != nil {
			return err
		}
		if err := w.later(qRemoveCard, now.Truncate(time.Second), now, accountID); err != nil {
			return err
		}
		return auditW(w, by, AuditEntry{AccountID: accountID, Action: AuditCardRemoved, Field: "card", Before: p.CardLabel()})
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// TopupSettings is the auto top-up form as typed.
type TopupSettings struct {
	Enabled, ThresholdUSD, AmountUSD, CapUSD string
}

// TopupConfig is valid auto top-up settings.
type TopupConfig struct {
	Enabled                                  bool
	ThresholdMicros, AmountMicros, CapMicros int64
}

// Sentence is the settings in one sentence, as Billing and the audit log
// say them: "off" when off.
func (c TopupConfig) Sentence() string {
	if !c.Enabled {
		return "off"
	}
	return "When available balance drops below " + FormatUSD(c.ThresholdMicros) + ", add " +
		FormatUSD(c.AmountMicros) + " (at most " + FormatUSD(c.CapMicros) + " a month)"
}

// Topup is the profile's auto top-up settings.
func (p *BillingProfile) Topup() TopupConfig {
	return TopupConfig{Enabled: p.TopupEnabled, ThresholdMicros: p.TopupThresholdMicros,
		AmountMicros: p.TopupAmountMicros, CapMicros: p.TopupCapMicros}
}

// Auto top-up bounds.
const (
	MinTopupThresholdMicros int64 = 1 * MicrosPerUSD
	MaxTopupCapMicros       int64 = 100_000 * MicrosPerUSD
)

// ValidateTopup checks the auto top-up form. Enabling needs every amount
// and a saved card; off, the amounts typed are checked and kept.
func ValidateTopup(in TopupSettings, hasCard bool) (TopupConfig, error) {
	fe := FieldErrors{}
	var c TopupConfig
	switch in.Enabled {
	case "on":
		c.Enabled = true
		if !hasCard {
			fe.Add("enabled", "Save a card first: auto top-up charges your saved card.")
		}
	case "":
	default:
		fe.Add("enabled", "Tick the box to turn auto top-up on, or leave it empty to turn it off.")
	}
	amount := func(field, raw string, check func(int64) string) int64 {
		if strings.TrimSpace(raw) == "" {
			if c.Enabled {
				fe.Add(field, "Enter an amount in dollars, like 20 or 12.50.")
			}
			return 0
		}
		m, msg := ParseCents(raw)
		if msg == "" {
			msg = check(m)
		}
		if msg != "" {
			fe.Add(field, msg)
		}
		return m
	}
	c.ThresholdMicros = amount("threshold_usd", in.ThresholdUSD, func(m int64) string {
		switch {
		case m < MinTopupThresholdMicros:
			return "Use at least " + FormatUSD(MinTopupThresholdMicros) + "."
		case m > MaxLowBalanceMicros:
			return "Use at most " + FormatUSD(MaxLowBalanceMicros) + "."
		}
		return ""
	})
	c.AmountMicros = amount("amount_usd", in.AmountUSD, func(m int64) string {
		switch { // a recharge's bounds
		case m < MinRechargeMicros:
			return "The smallest top-up is " + FormatUSD(MinRechargeMicros) + "."
		case m > MaxRechargeMicros:
			return "The largest top-up is " + FormatUSD(MaxRechargeMicros) + "."
		}
		return ""
	})
	c.CapMicros = amount("monthly_cap_usd", in.CapUSD, func(m int64) string {
		switch {
		case m > MaxTopupCapMicros:
			return "Use at most " + FormatUSD(MaxTopupCapMicros) + "."
		case fe["amount_usd"] == "" && c.AmountMicros > 0 && m < c.AmountMicros:
			return "The monthly cap must be at least the top-up amount, " + FormatUSD(c.AmountMicros) + "."
		}
		return ""
	})
	return c, fe.Err()
}

var (
	// Settings saved start a new crossing: when the balance is already
	// below the new threshold, a top-up starts now.
	qTopupOn = newQuery(`UPDATE wallets SET topup_threshold_micros = ?1, topup_not_before = NULL,
		topup_state = CASE WHEN topup_state = 'charging' THEN 'charging'
		WHEN balance_micros - held_micros - debt_micros < ?1 THEN 'due' ELSE 'armed' END WHERE account_id = ?2`)
	qSaveTopup = newQuery(`INSERT INTO billing_profiles (account_id, topup_enabled, topup_threshold_micros, topup_amount_micros,
		topup_cap_micros, topup_failures, updated_at) VALUES (?, ?, ?, ?, ?, 0, ?)
		ON CONFLICT (account_id) DO UPDATE SET topup_enabled = excluded.topup_enabled,
		topup_threshold_micros = excluded.topup_threshold_micros, topup_amount_micros = excluded.topup_amount_micros,
		topup_cap_micros = excluded.topup_cap_micros, topup_failures = 0, topup_failed_at = NULL, topup_paused_at = NULL,
		updated_at = excluded.updated_at`)
)

// SaveTopup stores auto top-up settings, all or nothing. Saving resumes
// a paused auto top-up and forgets its failures.
//
// The audit log records the change from was, the settings as the person
// saw them, when the sentence differs.
func (s *Store) SaveTopup(ctx context.Context, by Actor, accountID string, c, was TopupConfig) error {
	now := time.Now().UTC()
	return s.write(ctx, func(w *wtx) error {
		// The wallet first, as every write that takes both rows.
		if c.Enabled {
			if err := w.later(qTopupOn, c.ThresholdMicros, accountID); err != nil {
				return err
			}
		} else if err := w.later(qTopupOff, accountID); err != nil {
			return err
		}
		if err := w.later(qSaveTopup, accountID, c.Enabled, c.ThresholdMicros, c.AmountMicros, c.CapMicros, now); err != nil {
			return err
		}
		if was.Sentence() == c.Sentence() {
			return nil
		}
		return auditW(w, by, AuditEntry{AccountID: accountID, Action: AuditAutoTopupChanged, Field: "auto_topup",
			Before: was.Sentence(), After: c.Sentence()})
	})
}

// WalletStates is a wallet's auto top-up and low-balance state.
type WalletStates struct {
	TopupState     string
	TopupNotBefore *time.Time
	LowState       string
}

// WalletStatesOf returns a wallet's states.
func (s *Store) WalletStatesOf(ctx context.Context, accountID string) (*WalletStates, error) {
	var st WalletStates
	res := s.db.w.WithContext(ctx).Raw(`SELECT topup_state, topup_not_before, low_state FROM wallets WHERE account_id = ?`,
		accountID).Scan(&st)
	if res.Error != nil {
		return nil, res.Error
	}
	if res.RowsAffected == 0 {
		return nil, ErrNotFound
	}
	return &st, nil
}

// DueTopups returns accounts whose wallet crossed its auto top-up
// threshold and whose top-up may start at now.
func (s *Store) DueTopups(ctx context.Context, now time.Time, limit int) ([]string, error) {
	var ids []string
	err := s.db.w.WithContext(ctx).Raw(`SELECT account_id FROM wallets WHERE topup_state = 'due'
		AND (topup_not_before IS NULL OR topup_not_before <= ?) ORDER BY account_id LIMIT ?`, now.UTC(), limit).Scan(&ids).Error
	return ids, err
}

// Outcomes of StartTopup.
const (
	TopupStarted = "started" // a pending top-up payment was made
	TopupCapped  = "capped"  // the month's cap leaves no room: nothing charged
	TopupOff     = "off"     // auto top-up is off, paused or has no card: armed, nothing charged
	TopupWaiting = "waiting" // after failures, not before NotBefore
	TopupTaken   = "taken"   // someone else took this crossing
)

// TopupStart says what StartTopup did.
type TopupStart struct {
	Outcome   string
	Payment   *Payment  // TopupStarted
	NotBefore time.Time // TopupWaiting
}

// Payment kinds.
const (
	PaymentRecharge  = "recharge"
	PaymentAutoTopup = "auto_topup"
)

var (
	qTopupDisarm = newQuery(`UPDATE wallets SET topup_state = 'armed', topup_threshold_micros = NULL
		WHERE account_id = ? AND topup_state = 'due'`)
	qTopupNotBefore = newQuery(`UPDATE wallets SET topup_not_before = ? WHERE account_id = ? AND topup_state = 'due'`)
	qTopupCapped    = newQuery(`UPDATE wallets SET topup_state = 'spent', topup_not_before = NULL WHERE account_id = ? AND topup_state = 'due'`)
	qTopupClaim     = newQuery(`UPDATE wallets SET topup_state = 'charging', topup_not_before = NULL WHERE account_id = ? AND topup_state = 'due'`)
	qTopupsOfMonth  = newQuery(`SELECT COALESCE(SUM(amount_micros), 0) FROM payments WHERE account_id = ?
		AND kind = '` + PaymentAutoTopup + `' AND created_at >= ? AND status IN ('` + PaymentPending + `', '` + PaymentPaid + `', '` + PaymentActionRequired + `')`)
	qInsertTopup = newInsert("payments", "id, account_id, provider, kind, amount_micros, currency, status, detail, customer_id, card_id, "+
		"card_brand, card_last4, created_at, updated_at")
)

// TopupBackoff is how long after its failures-th failure in a row the
// next top-up may start: base, doubled for each failure after the first.
func TopupBackoff(base time.Duration, failures int) time.Duration {
	if failures <= 0 {
		return 0
	}
	return base << min(failures-1, 10)
}

// StartTopup claims an account's due crossing and starts its top-up: one
// guarded update of the wallet from due to charging, and the pending
// payment, in one transaction, so a crossing starts one top-up whoever
// else tries. Nothing is charged here: the caller charges the payment
// (the handlers' worker). The month's cap, or a backoff after failures
// (backoff: see TopupBackoff), start nothing. A crossing made by holds
// alone is one all the same: the calls under way will spend that money.
func (s *Store) StartTopup(ctx context.Context, accountID, provider string, now time.Time, backoff time.Duration) (*TopupStart, error) {
	p, err := s.BillingProfileOf(ctx, accountID)
	if err != nil {
		return nil, err
	}
	now = now.UTC()
	if !p.TopupActive() || p.Provider != provider || p.CustomerID == nil {
		return &TopupStart{Outcome: TopupOff}, s.write(ctx, func(w *wtx) error { return w.later(qTopupDisarm, accountID) })
	}
	if p.TopupFailures > 0 && p.TopupFailedAt != nil {
		if at := p.TopupFailedAt.Add(TopupBackoff(backoff, p.TopupFailures)); at.After(now) {
			return &TopupStart{Outcome: TopupWaiting, NotBefore: at},
				s.write(ctx, func(w *wtx) error { return w.later(qTopupNotBefore, at, accountID) })
		}
	}
	var out TopupStart
	err = s.write(ctx, func(w *wtx) error {
		out = TopupStart{}
		month := MonthStart(now)
		started, err := w.queryInt(qTopupsOfMonth, accountID, month)
		if err != nil {
			return err
		}
		if started+p.TopupAmountMicros > p.TopupCapMicros {
			n, err := w.exec(qTopupCapped, accountID)
			if err != nil || n == 0 {
				out.Outcome = TopupTaken
				return err
			}
			out.Outcome = TopupCapped
			return insertAlert(w, accountID, alertTopupCapped(p, started, now), now)
		}
		if n, err := w.exec(qTopupClaim, accountID); err != nil || n == 0 {
			out.Outcome = TopupTaken
			return err
		}
		pay := &Payment{ID: w.ids.newID("pay"), AccountID: accountID, Provider: provider, Kind: PaymentAutoTopup,
			AmountMicros: p.TopupAmountMicros, Currency: "usd", Status: PaymentPending, CustomerID: p.CustomerID,
			CardID: p.CardID, CardBrand: p.CardBrand, CardLast4: p.CardLast4, CreatedAt: now, UpdatedAt: now,
			Detail: "Charging your saved card."}
		out.Outcome, out.Payment = TopupStarted, pay
		return w.later(qInsertTopup, pay.ID, accountID, provider, PaymentAutoTopup, pay.AmountMicros, pay.Currency, pay.Status,
			pay.Detail, pay.CustomerID, pay.CardID, pay.CardBrand, pay.CardLast4, now, now)
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// OpenTopups returns top-ups whose PaymentIntent is yet to be made (the
// worker that started them stopped, or the provider did not answer) and
// that nobody is charging now.
func (s *Store) OpenTopups(ctx context.Context, now time.Time, limit int) ([]Payment, error) {
	var out []Payment
	err := s.db.w.WithContext(ctx).Where(`kind = ? AND status = ? AND intent_id IS NULL AND (lease_until IS NULL OR lease_until < ?)`,
		PaymentAutoTopup, PaymentPending, now.UTC()).Order("created_at").Limit(limit).Find(&out).Error
	return out, err
}

// LeaseTopup takes a pending top-up to charge it until until, so that one
// instance charges it at a time. false: someone else has it, or it needs
// no charge any more.
func (s *Store) LeaseTopup(ctx context.Context, id string, now, until time.Time) (bool, error) {
	res := s.db.w.WithContext(ctx).Exec(`UPDATE payments SET lease_until = ?, attempts = attempts + 1, updated_at = ?
		WHERE id = ? AND kind = ? AND status = ? AND intent_id IS NULL AND (lease_until IS NULL OR lease_until < ?)`,
		until.UTC(), now.UTC(), id, PaymentAutoTopup, PaymentPending, now.UTC())
	return res.RowsAffected == 1, res.Error
}

// AttachIntent records the PaymentIntent that charges a top-up.
func (s *Store) AttachIntent(ctx context.Context, paymentID, intentID string) error {
	return s.db.w.WithContext(ctx).Exec(`UPDATE payments SET intent_id = ?, lease_until = NULL WHERE id = ? AND intent_id IS NULL`,
		intentID, paymentID).Error
}

// StaleTopups returns pending top-ups charged (they have a
// PaymentIntent) whose outcome has not arrived since before: a webhook
// lost or late, or an instance stopped before it delivered its own.
func (s *Store) StaleTopups(ctx context.Context, before time.Time, limit int) ([]Payment, error) {
	var out []Payment
	err := s.db.w.WithContext(ctx).Where(`kind = ? AND status = ? AND intent_id IS NOT NULL AND updated_at < ?`,
		PaymentAutoTopup, PaymentPending, before.UTC()).Order("created_at").Limit(limit).Find(&out).Error
	return out, err
}

// TouchPayment marks a payment looked at now.
func (s *Store) TouchPayment(ctx context.Context, id string) error {
	return s.db.w.WithContext(ctx).Exec(`UPDATE payments SET updated_at = ? WHERE id = ?`, time.Now().UTC(), id).Error
}

// TopupsThisMonth is the sum of the auto top-ups charged or under way in
// now's calendar month (UTC), as the monthly cap counts them.
func (s *Store) TopupsThisMonth(ctx context.Context, accountID string, now time.Time) (int64, error) {
	var sum int64
	err := s.db.w.WithContext(ctx).Raw(`SELECT COALESCE(SUM(amount_micros), 0) FROM payments WHERE account_id = ? AND kind = ?
		AND created_at >= ? AND status IN (?, ?, ?)`, accountID, PaymentAutoTopup, MonthStart(now),
		PaymentPending, PaymentPaid, PaymentActionRequired).Scan(&sum).Error
	return sum, err
}

// LastTopup returns the account's latest auto top-up, or nil.
func (s *Store) LastTopup(ctx context.Context, accountID string) (*Payment, error) {
	var p Payment
	err := s.db.r.WithContext(ctx).Where("account_id = ? AND kind = ?", accountID, PaymentAutoTopup).Order("id DESC").Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	return &p, err
}

var (
	qTopupFinished = newQuery(`UPDATE wallets SET topup_state = CASE
		WHEN topup_threshold_micros IS NOT NULL AND balance_micros - held_micros - debt_micros >= topup_threshold_micros THEN 'armed'
		ELSE 'spent' END WHERE account_id = ? AND topup_state = 'charging'`)
	qTopupPausedWallet = newQuery(`UPDATE wallets SET topup_threshold_micros = NULL WHERE account_id = ?`)
	qTopupFailureCount = newQuery(`SELECT topup_failures FROM billing_profiles WHERE account_id = ?`)
	qTopupFailed       = newQuery(`UPDATE billing_profiles SET topup_failures = topup_failures + 1, topup_failed_at = ?, updated_at = ?
		WHERE account_id = ?`)
	qTopupPaused = newQuery(`UPDATE billing_profiles SET topup_paused_at = ? WHERE account_id = ? AND topup_paused_at IS NULL
		AND topup_enabled`)
	qTopupSucceeded = newQuery(`UPDATE billing_profiles SET topup_failures = 0, topup_failed_at = NULL WHERE account_id = ?`)
)

// finishTopup ends the top-up p of its wallet's crossing, once (the
// caller moved p out of pending): armed again when the balance is back
// above the threshold, else spent, so that a failure is not tried again
// for the same crossing. A failure counts towards the pause; the
// TopupPauseAfter-th in a row pauses auto top-up.
func finishTopup(w *wtx, p *Payment, ok bool, now time.Time) error {
	if ok {
		if err := w.later(qTopupFinished, p.AccountID); err != nil {
			return err
		}
		return w.later(qTopupSucceeded, p.AccountID)
	}
	failures, err := w.queryInt(qTopupFailureCount, p.AccountID)
	if err != nil {
		return err
	}
	if _, err := w.exec(qTopupFinished, p.AccountID); err != nil {
		return err
	}
	if failures+1 >= TopupPauseAfter {
		if err := w.later(qTopupPausedWallet, p.AccountID); err != nil {
			return err
		}
	}
	if err := w.later(qTopupFailed, now, now, p.AccountID); err != nil {
		return err
	}
	if failures+1 < TopupPauseAfter {
		return nil
	}
	n, err := w.exec(qTopupPaused, now, p.AccountID)
	if err != nil || n == 0 {
		return err
	}
	return insertAlert(w, p.AccountID, alertTopupPaused(p), now)
}
