package models

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
)

// Billing outcomes of a request, each with the platform's rule in plain words.
const (
	OutcomePending            = "pending"
	OutcomeCharged            = "charged"
	OutcomeChargedPartial     = "charged_partial"
	OutcomeNotChargedRejected = "not_charged_rejected"
	OutcomeNotChargedFailed   = "not_charged_failed"
	OutcomeNotChargedCancel   = "not_charged_cancelled"
	OutcomeNotChargedExpired  = "not_charged_expired"
	// OutcomeNotChargedFree is a self-service read (models, account,
	// requests, tasks): answered, never charged.
	OutcomeNotChargedFree = "not_charged_free"
)

// OutcomeLabel names a billing outcome as a customer reads it; the code
// stays beside it as small text or a tooltip.
func OutcomeLabel(outcome string) string {
	switch outcome {
	case OutcomePending:
		return "Running — held"
	case OutcomeCharged:
		return "Charged"
	case OutcomeChargedPartial:
		return "Charged for delivered tokens"
	case OutcomeNotChargedRejected:
		return "Not charged — rejected"
	case OutcomeNotChargedFailed:
		return "Not charged — failed"
	case OutcomeNotChargedCancel:
		return "Not charged — cancelled"
	case OutcomeNotChargedExpired:
		return "Not charged — expired"
	case OutcomeNotChargedFree:
		return "Free"
	}
	return outcome
}

// OutcomeRule explains a billing outcome in the platform's words.
func OutcomeRule(outcome string) string {
	switch outcome {
	case OutcomePending:
		return "Still running — the call's maximum cost is held until it completes."
	case OutcomeCharged:
		return "Completed — charged its real usage, never more than its hold."
	case OutcomeChargedPartial:
		return "Stream cut off mid-way — settled on the usage actually delivered."
	case OutcomeNotChargedRejected:
		return "Rejected before processing — not charged, nothing was held."
	case OutcomeNotChargedFailed:
		return "Upstream failure — not charged; the hold was released."
	case OutcomeNotChargedCancel:
		return "Cancelled — not charged; the hold was released."
	case OutcomeNotChargedExpired:
		return "Expired — not charged; the hold was released."
	case OutcomeNotChargedFree:
		return "Free endpoint — answered and never charged."
	}
	return ""
}

// Request is one call the gateway answered: the row the console explains.
type Request struct {
	ID               string
	AccountID        *string
	KeyID            *string
	Method           string
	Path             string
	Model            string
	Status           int
	ErrorType        string
	ErrorMessage     string
	ErrorBody        string
	ClientIP         string `gorm:"column:client_ip"`
	Stream           bool
	LatencyMS        int64 `gorm:"column:latency_ms"`
	PromptTokens     int
	CompletionTokens int
	HoldMicros       int64
	// RefusedHoldMicros is the hold a call was refused (a 402: the key's
	// monthly limit or the wallet could not take it); it held nothing.
	RefusedHoldMicros  int64
	ChargedMicros      int64
	BillingOutcome     string
	OutcomeDetail      string
	RatelimitLimit     *int
	RatelimitRemaining *int
	RatelimitReset     *int64
	RetryAfter         *int
	CreatedAt          time.Time
	CompletedAt        *time.Time
	// The call's hold, when it held one: HoldStatus is open, captured,
	// released or expired ("" for none), for HoldMicros from HeldAt.
	HoldStatus    string
	HeldAt        *time.Time
	HoldExpiresAt *time.Time
	HoldEndedAt   *time.Time
}

// unhold clears what a hold that was never placed wrote on the row.
func (r *Request) unhold() {
	r.RefusedHoldMicros = r.HoldMicros
	r.HoldMicros, r.BillingOutcome = 0, ""
	r.HoldStatus, r.HeldAt, r.HoldExpiresAt = "", nil, nil
}

// BillingEvent is one step of a request's billing timeline.
type BillingEvent struct {
	Event         string // hold_placed | captured | released | expired
	AmountMicros  int64
	LedgerEntryID *string // the charge, for captured
	Detail        string
	CreatedAt     time.Time
}

// LogRequest stores a request that moved no money: a rejection, a 404, a
// free call. Its row is written before the client gets its answer.
func (s *Store) LogRequest(ctx context.Context, r *Request) error {
	if r.BillingOutcome == "" {
		r.BillingOutcome = OutcomeNotChargedRejected
	}
	if r.CompletedAt == nil {
		now := time.Now().UTC()
		r.CompletedAt = &now
	}
	return s.write(ctx, func(w *wtx) error {
		if err := insertRequest(w, r); err != nil {
			return err
		}
		if r.AccountID != nil && r.BillingOutcome != OutcomePending {
			w.countUsage(*r.AccountID, strOr(r.KeyID), r, r.BillingOutcome, 0, *r.CompletedAt) // it moved no money
		}
		return nil
	})
}

// RequestOf returns one request of an account; another account's request
// is ErrNotFound, exactly like a missing one.
func (s *Store) RequestOf(ctx context.Context, accountID, id string) (*Request, error) {
	var r Request
	err := s.db.r.WithContext(ctx).Where("id = ? AND account_id = ?", id, accountID).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	return &r, err
}

// Timeline returns a request's billing timeline, oldest first: the hold
// placed, then captured (with its ledger charge) and the unused part
// released, or released whole, or expired. Every step is read from the
// request row's hold and outcome detail and from the ledger; nothing is
// stored twice. A request that held nothing has no timeline.
func (s *Store) Timeline(ctx context.Context, requestID string) ([]BillingEvent, error) {
	db := s.db.r.WithContext(ctx)
	var rows []Request
	if err := db.Select("id", "hold_micros", "charged_micros", "outcome_detail", "hold_status", "held_at", "hold_ended_at").
		Where("id = ?", requestID).Limit(1).Find(&rows).Error; err != nil || len(rows) == 0 {
		return nil, err
	}
	r := rows[0]
	if r.HoldStatus == "" || r.HeldAt == nil {
		return nil, nil
	}
	out := []BillingEvent{{Event: "hold_placed", AmountMicros: r.HoldMicros, CreatedAt: *r.HeldAt}}
	if r.HoldStatus == HoldOpen || r.HoldEndedAt == nil {
		return out, nil
	}
	end := BillingEvent{Event: r.HoldStatus, AmountMicros: r.HoldMicros, Detail: r.OutcomeDetail, CreatedAt: *r.HoldEndedAt}
	if r.HoldStatus != HoldCaptured {
		return append(out, end), nil
	}
	end.AmountMicros = r.ChargedMicros
	if r.ChargedMicros > 0 {
		var ids []string
		if err := db.Model(&LedgerEntry{}).Where("request_id = ? AND kind = ?", requestID, LedgerCharge).
			Order("id").Limit(1).Pluck("id", &ids).Error; err != nil {
			return nil, err
		}
		if len(ids) > 0 {
			end.LedgerEntryID = &ids[0]
		}
	}
	out = append(out, end)
	if rest := r.HoldMicros - r.ChargedMicros; rest > 0 {
		out = append(out, BillingEvent{Event: HoldReleased, AmountMicros: rest,
			Detail: "the unused part of the hold", CreatedAt: *r.HoldEndedAt})
	}
	return out, nil
}
