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
	ID                 string
	AccountID          *string
	KeyID              *string
	Method             string
	Path               string
	Model              string
	Status             int
	ErrorType          string
	ErrorMessage       string
	ErrorBody          string
	ClientIP           string `gorm:"column:client_ip"`
	Stream             bool
	LatencyMS          int64 `gorm:"column:latency_ms"`
	PromptTokens       int
	CompletionTokens   int
	HoldMicros         int64
	ChargedMicros      int64
	BillingOutcome     string
	OutcomeDetail      string
	RatelimitLimit     *int
	RatelimitRemaining *int
	RatelimitReset     *int64
	RetryAfter         *int
	CreatedAt          time.Time
	CompletedAt        *time.Time
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
	return s.write(ctx, func(w *wtx) error { return insertRequest(w, r) })
}

// RequestOf returns one request of an account; another account's request
// is ErrNotFound, exactly like a missing one.
func (s *Store) RequestOf(ctx context.Context, accountID, id string) (*Request, error) {
	var r Request
	err := s.db.R.WithContext(ctx).Where("id = ? AND account_id = ?", id, accountID).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	return &r, err
}

// Timeline returns a request's billing timeline, oldest first: the hold
// placed, then captured (with its ledger charge) and the unused part
// released, or released whole, or expired. Every step is read from the
// hold, the request's outcome detail and the ledger; nothing is stored
// twice. A request that held nothing has no timeline.
func (s *Store) Timeline(ctx context.Context, requestID string) ([]BillingEvent, error) {
	db := s.db.R.WithContext(ctx)
	var holds []Hold
	if err := db.Where("request_id = ?", requestID).Order("id").Limit(1).Find(&holds).Error; err != nil || len(holds) == 0 {
		return nil, err
	}
	h := holds[0]
	out := []BillingEvent{{Event: "hold_placed", AmountMicros: h.AmountMicros, CreatedAt: h.CreatedAt}}
	if h.Status == HoldOpen || h.EndedAt == nil {
		return out, nil
	}
	var details []string
	if err := db.Model(&Request{}).Where("id = ?", requestID).Limit(1).Pluck("outcome_detail", &details).Error; err != nil {
		return nil, err
	}
	detail := ""
	if len(details) > 0 {
		detail = details[0]
	}
	end := BillingEvent{Event: h.Status, AmountMicros: h.AmountMicros, Detail: detail, CreatedAt: *h.EndedAt}
	if h.Status != HoldCaptured {
		return append(out, end), nil
	}
	end.AmountMicros = h.CapturedMicros
	if h.CapturedMicros > 0 {
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
	if rest := h.AmountMicros - h.CapturedMicros; rest > 0 {
		out = append(out, BillingEvent{Event: HoldReleased, AmountMicros: rest,
			Detail: "the unused part of the hold", CreatedAt: *h.EndedAt})
	}
	return out, nil
}
