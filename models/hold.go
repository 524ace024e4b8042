package models

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Hold statuses.
const (
	HoldOpen     = "open"
	HoldCaptured = "captured"
	HoldReleased = "released"
	HoldExpired  = "expired"
)

// Hold reserves a call's maximum cost while it runs.
type Hold struct {
	ID             string
	AccountID      string
	KeyID          string
	RequestID      string
	Month          string
	AmountMicros   int64
	Status         string
	CapturedMicros int64
	CreatedAt      time.Time
	ExpiresAt      time.Time
	EndedAt        *time.Time
}

// keyMonthUsage is a key's spend and open holds in one calendar month.
type keyMonthUsage struct {
	KeyID       string `gorm:"primaryKey"`
	Month       string `gorm:"primaryKey"`
	SpentMicros int64
	HeldMicros  int64
}

func (keyMonthUsage) TableName() string { return "key_month_usage" }

// MonthOf is the calendar month (UTC) a time counts against: "2026-11".
func MonthOf(t time.Time) string { return t.UTC().Format("2006-01") }

// QuotaError says a call would take its key over its monthly limit.
type QuotaError struct {
	LimitMicros       int64
	MonthToDateMicros int64 // spent plus open holds, before this call
	HoldMicros        int64
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("This key's monthly limit is %s; month-to-date spend and open holds are %s, and this call needs a hold of %s.",
		FormatUSDExact(e.LimitMicros), FormatUSDExact(e.MonthToDateMicros), FormatUSDExact(e.HoldMicros))
}

// ShortfallError says the wallet's available balance cannot cover a hold.
type ShortfallError struct {
	AvailableMicros int64
	HoldMicros      int64
}

// ShortfallMicros is how much more the wallet needs.
func (e *ShortfallError) ShortfallMicros() int64 { return e.HoldMicros - e.AvailableMicros }

func (e *ShortfallError) Error() string {
	return fmt.Sprintf("This call needs a hold of %s but the wallet's available balance is %s: recharge at least %s.",
		FormatUSDExact(e.HoldMicros), FormatUSDExact(e.AvailableMicros), FormatUSDExact(e.ShortfallMicros()))
}

// StartCall places a call's hold and writes its request row, outcome
// pending, in one transaction: first the key's monthly limit, then the
// wallet, each one guarded update, never read-then-write. It returns a
// *QuotaError or *ShortfallError, having written nothing, when either
// cannot take the hold.
func (s *Store) StartCall(ctx context.Context, r *Request, keyID string, limit *int64, hold int64, ttl time.Duration) (*Hold, error) {
	if r.AccountID == nil {
		return nil, errors.New("start call: request without an account")
	}
	now := time.Now().UTC()
	h := &Hold{
		ID: NewID("hold"), AccountID: *r.AccountID, KeyID: keyID, RequestID: r.ID, Month: MonthOf(now),
		AmountMicros: hold, Status: HoldOpen, CreatedAt: now, ExpiresAt: now.Add(ttl),
	}
	r.HoldMicros = hold
	r.BillingOutcome = OutcomePending
	err := s.tx(ctx, func(tx *gorm.DB) error {
		// One guarded upsert: the key's month takes the hold only if it
		// stays within the limit, whether or not the month has a row yet.
		var res *gorm.DB
		if limit == nil {
			res = tx.Exec(`INSERT INTO key_month_usage (key_id, month, spent_micros, held_micros) VALUES (?, ?, 0, ?)
				ON CONFLICT (key_id, month) DO UPDATE SET held_micros = key_month_usage.held_micros + excluded.held_micros`,
				keyID, h.Month, hold)
		} else {
			res = tx.Exec(`INSERT INTO key_month_usage (key_id, month, spent_micros, held_micros)
				SELECT CAST(? AS TEXT), CAST(? AS TEXT), 0, CAST(? AS BIGINT) WHERE CAST(? AS BIGINT) <= CAST(? AS BIGINT)
				ON CONFLICT (key_id, month) DO UPDATE SET held_micros = key_month_usage.held_micros + excluded.held_micros
				WHERE key_month_usage.spent_micros + key_month_usage.held_micros + excluded.held_micros <= ?`,
				keyID, h.Month, hold, hold, *limit, *limit)
		}
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			var u keyMonthUsage
			if err := tx.Where("key_id = ? AND month = ?", keyID, h.Month).Limit(1).Find(&u).Error; err != nil {
				return err
			}
			return &QuotaError{LimitMicros: *limit, MonthToDateMicros: u.SpentMicros + u.HeldMicros, HoldMicros: hold}
		}

		res = tx.Model(&Wallet{}).Where("account_id = ? AND balance_micros - held_micros >= ?", h.AccountID, hold).
			Updates(map[string]any{"held_micros": gorm.Expr("held_micros + ?", hold), "updated_at": now})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			var w Wallet
			if err := tx.Where("account_id = ?", h.AccountID).Take(&w).Error; err != nil {
				return err
			}
			return &ShortfallError{AvailableMicros: w.Available(), HoldMicros: hold}
		}
		if err := tx.Create(h).Error; err != nil {
			return err
		}
		if err := tx.Create(r).Error; err != nil {
			return err
		}
		return tx.Create(&BillingEvent{
			ID: NewID("bev"), RequestID: r.ID, AccountID: h.AccountID, Event: "hold_placed",
			AmountMicros: hold, CreatedAt: now,
		}).Error
	})
	if err != nil {
		r.HoldMicros, r.BillingOutcome = 0, "" // nothing was held
		return nil, err
	}
	return h, nil
}

// FinishCall captures a hold at the call's real cost (never more than the
// hold) and completes its request row, in one transaction. When the hold
// had already ended (the reaper expired it), nothing is charged and the
// row keeps the reaper's outcome.
func (s *Store) FinishCall(ctx context.Context, h *Hold, r *Request, cost int64) error {
	cost = min(max(cost, 0), h.AmountMicros)
	now := time.Now().UTC()
	return s.tx(ctx, func(tx *gorm.DB) error {
		ok, err := captureTx(tx, h, cost, r.OutcomeDetail, now)
		if err != nil || !ok {
			return err
		}
		r.ChargedMicros = cost
		if r.BillingOutcome == "" || r.BillingOutcome == OutcomePending {
			r.BillingOutcome = OutcomeCharged
		}
		return completeRequest(tx, r, now)
	})
}

// ReleaseCall ends a hold without charging (upstream failure, cancel) and
// completes the request row with outcome, in one transaction.
func (s *Store) ReleaseCall(ctx context.Context, h *Hold, r *Request, outcome string) error {
	now := time.Now().UTC()
	return s.tx(ctx, func(tx *gorm.DB) error {
		ok, err := releaseTx(tx, h, HoldReleased, r.OutcomeDetail, now)
		if err != nil || !ok {
			return err
		}
		r.ChargedMicros = 0
		r.BillingOutcome = outcome
		return completeRequest(tx, r, now)
	})
}

// captureTx ends an open hold as captured at cost: the ledger charge and
// the timeline's events. It reports false, changing nothing, when the hold
// had already ended.
func captureTx(tx *gorm.DB, h *Hold, cost int64, detail string, now time.Time) (bool, error) {
	balance, ok, err := endHold(tx, h, HoldCaptured, cost, now)
	if err != nil || !ok {
		return false, err
	}
	ev := &BillingEvent{ID: NewID("bev"), RequestID: h.RequestID, AccountID: h.AccountID, Event: "captured",
		AmountMicros: cost, Detail: detail, CreatedAt: now}
	if cost > 0 {
		e := &LedgerEntry{ID: NewID("led"), AccountID: h.AccountID, Kind: LedgerCharge, AmountMicros: -cost,
			BalanceAfterMicros: balance, RequestID: &h.RequestID, Memo: "API call " + h.RequestID, CreatedAt: now}
		if err := tx.Create(e).Error; err != nil {
			return false, err
		}
		ev.LedgerEntryID = &e.ID
	}
	if err := tx.Create(ev).Error; err != nil {
		return false, err
	}
	if rest := h.AmountMicros - cost; rest > 0 {
		if err := tx.Create(&BillingEvent{ID: NewID("bev"), RequestID: h.RequestID, AccountID: h.AccountID,
			Event: "released", AmountMicros: rest, Detail: "the unused part of the hold", CreatedAt: now}).Error; err != nil {
			return false, err
		}
	}
	return true, nil
}

// releaseTx ends an open hold without a charge (status released or
// expired) and records it on the timeline. It reports false, changing
// nothing, when the hold had already ended.
func releaseTx(tx *gorm.DB, h *Hold, status, detail string, now time.Time) (bool, error) {
	_, ok, err := endHold(tx, h, status, 0, now)
	if err != nil || !ok {
		return false, err
	}
	return true, tx.Create(&BillingEvent{ID: NewID("bev"), RequestID: h.RequestID, AccountID: h.AccountID,
		Event: status, AmountMicros: h.AmountMicros, Detail: detail, CreatedAt: now}).Error
}

// endHold moves an open hold to status exactly once and gives back what it
// held on the key's month and the wallet; with status captured, cost moves
// from held to spent and leaves the balance. It returns the balance after,
// and false when the hold had already ended, having changed nothing.
func endHold(tx *gorm.DB, h *Hold, status string, cost int64, now time.Time) (int64, bool, error) {
	res := tx.Model(&Hold{}).Where("id = ? AND status = ?", h.ID, HoldOpen).
		Updates(map[string]any{"status": status, "captured_micros": cost, "ended_at": now})
	if res.Error != nil || res.RowsAffected == 0 {
		return 0, false, res.Error
	}
	// Rows are locked in the same order as StartCall (key usage, then
	// wallet), so concurrent calls on PostgreSQL cannot deadlock.
	if err := tx.Model(&keyMonthUsage{}).Where("key_id = ? AND month = ?", h.KeyID, h.Month).Updates(map[string]any{
		"held_micros":  gorm.Expr("held_micros - ?", h.AmountMicros),
		"spent_micros": gorm.Expr("spent_micros + ?", cost),
	}).Error; err != nil {
		return 0, false, err
	}
	var balance int64
	err := tx.Raw(`UPDATE wallets SET held_micros = held_micros - ?, balance_micros = balance_micros - ?, updated_at = ?
		WHERE account_id = ? RETURNING balance_micros`, h.AmountMicros, cost, now, h.AccountID).Scan(&balance).Error
	return balance, err == nil, err
}

func completeRequest(tx *gorm.DB, r *Request, now time.Time) error {
	r.CompletedAt = &now
	return tx.Model(&Request{}).Where("id = ?", r.ID).Updates(map[string]any{
		"status": r.Status, "error_type": r.ErrorType, "error_message": r.ErrorMessage, "error_body": r.ErrorBody,
		"latency_ms": r.LatencyMS, "prompt_tokens": r.PromptTokens, "completion_tokens": r.CompletionTokens,
		"charged_micros": r.ChargedMicros, "billing_outcome": r.BillingOutcome, "outcome_detail": r.OutcomeDetail,
		"completed_at": now,
	}).Error
}

// ExpireHolds releases every open hold past its expiry, as expired, and
// marks its request not_charged_expired. Each hold ends exactly once even
// when several reapers run at the same time: the guarded update in endHold
// lets only one of them end it.
func (s *Store) ExpireHolds(ctx context.Context, now time.Time) (int, error) {
	var due []Hold
	if err := s.db.W.WithContext(ctx).Where("status = ? AND expires_at < ?", HoldOpen, now.UTC()).
		Order("expires_at").Limit(500).Find(&due).Error; err != nil {
		return 0, err
	}
	n := 0
	for i := range due {
		h := &due[i]
		ended := false
		err := s.tx(ctx, func(tx *gorm.DB) error {
			ended = false // a retried transaction starts over
			ok, err := releaseTx(tx, h, HoldExpired, "the call did not finish before its hold expired", now.UTC())
			if err != nil || !ok {
				return err
			}
			ended = true
			return tx.Model(&Request{}).Where("id = ? AND billing_outcome = ?", h.RequestID, OutcomePending).
				Updates(map[string]any{"billing_outcome": OutcomeNotChargedExpired, "charged_micros": 0,
					"completed_at": now.UTC(), "outcome_detail": "hold expired"}).Error
		})
		if err != nil {
			return n, err
		}
		if ended { // counted only once committed
			n++
		}
	}
	return n, nil
}
