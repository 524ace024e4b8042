package models

import (
	"context"
	"fmt"
	"time"
)

// Alert kinds.
const (
	AlertLowBalance    = "low_balance"
	AlertKeyLimit80    = "key_limit_80"
	AlertKeyLimit100   = "key_limit_100"
	AlertTopupDeclined = "topup_declined"
	AlertTopupPaused   = "topup_paused"
	AlertTopupAction   = "topup_action"
	AlertTopupCapped   = "topup_capped"
)

// Alert is something the console tells an account: on Overview until
// someone dismisses it, and by mail once.
type Alert struct {
	ID          string
	AccountID   string
	Kind        string
	Dedupe      string // unique per account: an alert is made once
	Title       string
	Body        string
	Link        string // a console path where it is dealt with
	KeyID       *string
	CreatedAt   time.Time
	MailedAt    *time.Time
	DismissedAt *time.Time
}

// newAlert is an alert before it is stored.
type newAlert struct {
	kind, dedupe, title, body, link string
	keyID                           *string
}

var qInsertAlert = newQuery(`INSERT INTO alerts (id, account_id, kind, dedupe, title, body, link, key_id, created_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, dedupe) DO NOTHING`)

// insertAlert stores an alert in a write, once per dedupe key.
func insertAlert(w *wtx, accountID string, a newAlert, now time.Time) error {
	id := w.ids.newID("alrt")
	if a.dedupe == "" {
		a.dedupe = a.kind + ":" + id
	}
	return w.later(qInsertAlert, id, accountID, a.kind, a.dedupe, a.title, a.body, a.link, a.keyID, now)
}

func alertTopupDeclined(p *Payment, reason string) newAlert {
	card := p.Card()
	if card == "" {
		card = "your saved card"
	}
	return newAlert{kind: AlertTopupDeclined, dedupe: AlertTopupDeclined + ":" + p.ID,
		title: "Auto top-up of " + FormatUSD(p.AmountMicros) + " was declined",
		body: "We tried to charge " + card + " " + FormatUSD(p.AmountMicros) + " because your available balance dropped below " +
			"your auto top-up threshold. " + reason + " Nothing was charged. Check the card, or save another one on Billing.",
		link: "/billing#auto-topup"}
}

func alertTopupAction(p *Payment) newAlert {
	return newAlert{kind: AlertTopupAction, dedupe: AlertTopupAction + ":" + p.ID,
		title: "Confirm your auto top-up of " + FormatUSD(p.AmountMicros),
		body: "Your card's bank asks you to confirm the auto top-up of " + FormatUSD(p.AmountMicros) +
			" before it is charged. Open the payment and choose Confirm to finish paying; until then nothing is charged.",
		link: "/billing/payments/" + p.ID}
}

func alertTopupPaused(p *Payment) newAlert {
	return newAlert{kind: AlertTopupPaused, dedupe: AlertTopupPaused + ":" + p.ID,
		title: "Auto top-up is paused",
		body: fmt.Sprintf("The last %d auto top-ups could not be charged, so auto top-up paused itself: nothing more is "+
			"charged to your card. Check or replace the card, then save the auto top-up settings on Billing to turn it on again.", TopupPauseAfter),
		link: "/billing#auto-topup"}
}

func alertTopupCapped(p *BillingProfile, started int64, now time.Time) newAlert {
	month := MonthOf(now)
	m := FormatUSDs(p.TopupCapMicros, started, p.TopupAmountMicros)
	return newAlert{kind: AlertTopupCapped, dedupe: AlertTopupCapped + ":" + month,
		title: "Auto top-up reached its monthly cap",
		body: "Auto top-ups this month add up to " + m[1] + "; another " + m[2] + " would pass your cap of " + m[0] +
			" a month, so none is made until " + MonthlyReset(now).Format("2 January 2006") + " (UTC). " +
			"Recharge on Billing, or raise the cap.",
		link: "/billing#auto-topup"}
}

// OpenAlerts returns an account's alerts nobody dismissed, newest first.
func (s *Store) OpenAlerts(ctx context.Context, accountID string, limit int) ([]Alert, error) {
	var out []Alert
	err := s.db.r.WithContext(ctx).Where("account_id = ? AND dismissed_at IS NULL", accountID).
		Order("id DESC").Limit(limit).Find(&out).Error
	return out, err
}

// DismissAlert hides an account's alert from Overview. Another account's
// alert is ErrNotFound.
func (s *Store) DismissAlert(ctx context.Context, accountID, id string) error {
	res := s.db.w.WithContext(ctx).Exec(`UPDATE alerts SET dismissed_at = ? WHERE id = ? AND account_id = ? AND dismissed_at IS NULL`,
		time.Now().UTC(), id, accountID)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		var n int64
		if err := s.db.w.WithContext(ctx).Model(&Alert{}).Where("id = ? AND account_id = ?", id, accountID).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
	}
	return nil
}

// UnmailedAlerts returns alerts whose mail is still to be sent, oldest first.
func (s *Store) UnmailedAlerts(ctx context.Context, limit int) ([]Alert, error) {
	var out []Alert
	err := s.db.w.WithContext(ctx).Where("mailed_at IS NULL").Order("created_at").Limit(limit).Find(&out).Error
	return out, err
}

// ClaimAlertMail takes the sending of an alert's mail, once across
// instances; ReleaseAlertMail gives it back when sending failed.
func (s *Store) ClaimAlertMail(ctx context.Context, id string) (bool, error) {
	res := s.db.w.WithContext(ctx).Exec(`UPDATE alerts SET mailed_at = ? WHERE id = ? AND mailed_at IS NULL`, time.Now().UTC(), id)
	return res.RowsAffected == 1, res.Error
}

// ReleaseAlertMail: see ClaimAlertMail.
func (s *Store) ReleaseAlertMail(ctx context.Context, id string) error {
	return s.db.w.WithContext(ctx).Exec(`UPDATE alerts SET mailed_at = NULL WHERE id = ?`, id).Error
}

var (
	qLowBalanceSent = newQuery(`UPDATE wallets SET low_state = 'sent' WHERE account_id = ? AND low_state = 'due'`)
	qLowThreshold   = newQuery(`SELECT COALESCE(low_balance_micros, 0) FROM wallets WHERE account_id = ?`)
)

// TakeLowBalanceAlerts makes the low-balance alert of every wallet whose
// available balance crossed its warning, once per crossing: the guarded
// update from due to sent lets one writer make it.
func (s *Store) TakeLowBalanceAlerts(ctx context.Context, limit int) (int, error) {
	var due []string
	if err := s.db.w.WithContext(ctx).Raw(`SELECT account_id FROM wallets WHERE low_state = 'due' ORDER BY account_id LIMIT ?`, limit).
		Scan(&due).Error; err != nil {
		return 0, err
	}
	made := 0
	for _, acct := range due {
		ok := false
		err := s.write(ctx, func(w *wtx) error {
			ok = false
			n, err := w.exec(qLowBalanceSent, acct)
			if err != nil || n == 0 {
				return err
			}
			available, err := w.queryInt(qWalletAvailable, acct)
			if err != nil {
				return err
			}
			threshold, err := w.queryInt(qLowThreshold, acct)
			if err != nil {
				return err
			}
			ok = true
			// Calls under way may have crossed it with their holds and
			// ended since: the balance now is said apart.
			return insertAlert(w, acct, newAlert{kind: AlertLowBalance,
				title: "Available balance below " + FormatUSD(threshold),
				body: "Your available balance went below your low-balance warning of " + FormatUSD(threshold) + ". " +
					"It is " + FormatUSD(available) + " now. When it runs out, API calls are refused with billing_shortfall: " +
					"recharge on Billing, or turn on auto top-up, to keep calling.",
				link: "/billing#recharge"}, time.Now().UTC())
		})
		if err != nil {
			return made, err
		}
		if ok {
			made++
		}
	}
	return made, nil
}

// keyNearLimit is a key of the month whose use passed 80% of its limit.
type keyNearLimit struct {
	KeyID              string
	AccountID          string
	Name               string
	MonthlyLimitMicros int64
	Used               int64
	AlertLevel         int
}

var qKeyAlertLevel = newQuery(`UPDATE key_month_usage SET alert_level = ? WHERE key_id = ? AND month = ? AND alert_level < ?`)

// TakeKeyLimitAlerts makes the alerts of keys whose month-to-date use
// (spend and open holds, as the limit counts it) reached 80% or 100% of
// their monthly limit: each once per key and month, whatever the number
// of instances (a guarded update of the key's month row).
func (s *Store) TakeKeyLimitAlerts(ctx context.Context, now time.Time) (int, error) {
	month := MonthOf(now)
	var rows []keyNearLimit
	err := s.db.w.WithContext(ctx).Raw(`SELECT u.key_id, k.account_id, k.name, k.monthly_limit_micros,
		u.spent_micros + u.held_micros AS used, u.alert_level
		FROM key_month_usage u JOIN api_keys k ON k.id = u.key_id
		WHERE u.month = ? AND u.alert_level < 100 AND k.monthly_limit_micros > 0
		AND (u.spent_micros + u.held_micros) * 5 >= k.monthly_limit_micros * 4`, month).Scan(&rows).Error
	if err != nil {
		return 0, err
	}
	made := 0
	for _, r := range rows {
		level := 80
		if r.Used >= r.MonthlyLimitMicros {
			level = 100
		}
		if level <= r.AlertLevel {
			continue
		}
		ok := false
		err := s.write(ctx, func(w *wtx) error {
			ok = false
			n, err := w.exec(qKeyAlertLevel, level, r.KeyID, month, level)
			if err != nil || n == 0 {
				return err
			}
			ok = true
			m := FormatUSDs(r.Used, r.MonthlyLimitMicros)
			key := r.KeyID
			a := newAlert{kind: AlertKeyLimit80, dedupe: fmt.Sprintf("key_limit_%d:%s:%s", level, r.KeyID, month), keyID: &key,
				title: fmt.Sprintf("Key “%s” has used 80%% of its monthly limit", r.Name),
				body: fmt.Sprintf("The key “%s” has used %s of its %s monthly limit in %s (UTC). At the limit its calls are refused "+
					"with api_key_quota_exceeded until %s, unless you raise the limit.", r.Name, m[0], m[1],
					now.UTC().Format("January 2006"), MonthlyReset(now).Format("2 January 2006")),
				link: "/keys/" + r.KeyID}
			if level == 100 {
				a.kind = AlertKeyLimit100
				a.title = fmt.Sprintf("Key “%s” reached its monthly limit", r.Name)
				a.body = fmt.Sprintf("The key “%s” has used %s of its %s monthly limit in %s (UTC): its calls are refused with "+
					"api_key_quota_exceeded until %s, unless you raise the limit.", r.Name, m[0], m[1],
					now.UTC().Format("January 2006"), MonthlyReset(now).Format("2 January 2006"))
			}
			return insertAlert(w, r.AccountID, a, now.UTC())
		})
		if err != nil {
			return made, err
		}
		if ok {
			made++
		}
	}
	return made, nil
}
