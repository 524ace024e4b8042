package models

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Hold statuses.
const (
	HoldOpen     = "open"
	HoldCaptured = "captured"
	HoldReleased = "released"
	HoldExpired  = "expired"
)

// Hold reserves a call's maximum cost while it runs. It is stored on the
// call's request row (hold_status, held_at, hold_expires_at,
// hold_ended_at, with hold_micros and charged_micros).
type Hold struct {
	RequestID    string
	AccountID    string
	KeyID        string
	Month        string // the key's month it counts against: that of CreatedAt
	AmountMicros int64
	CreatedAt    time.Time
	ExpiresAt    time.Time
}

// holdOf is the hold a request row carries.
func holdOf(r *Request) *Hold {
	h := &Hold{RequestID: r.ID, AmountMicros: r.HoldMicros}
	if r.AccountID != nil {
		h.AccountID = *r.AccountID
	}
	if r.KeyID != nil {
		h.KeyID = *r.KeyID
	}
	if r.HeldAt != nil {
		h.CreatedAt = *r.HeldAt
		h.Month = MonthOf(*r.HeldAt)
	}
	if r.HoldExpiresAt != nil {
		h.ExpiresAt = *r.HoldExpiresAt
	}
	return h
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
	m := FormatUSDs(e.LimitMicros, e.MonthToDateMicros, e.HoldMicros)
	return fmt.Sprintf("This key's monthly limit is %s; month-to-date spend and open holds are %s, and this call needs a hold of %s.",
		m[0], m[1], m[2])
}

// ShortfallError says the wallet's available balance cannot cover a hold.
type ShortfallError struct {
	AvailableMicros int64
	HoldMicros      int64
}

// ShortfallMicros is how much more the wallet needs.
func (e *ShortfallError) ShortfallMicros() int64 { return e.HoldMicros - e.AvailableMicros }

func (e *ShortfallError) Error() string {
	m := FormatUSDs(e.HoldMicros, e.AvailableMicros, e.ShortfallMicros())
	return fmt.Sprintf("This call needs a hold of %s but the wallet's available balance is %s: recharge at least %s.",
		m[0], m[1], m[2])
}

var (
	qHoldKeyMonth = newQuery(`INSERT INTO key_month_usage (key_id, month, spent_micros, held_micros) VALUES (?, ?, 0, ?)
		ON CONFLICT (key_id, month) DO UPDATE SET held_micros = key_month_usage.held_micros + excluded.held_micros`)
	qHoldKeyMonthLimited = newQuery(`INSERT INTO key_month_usage (key_id, month, spent_micros, held_micros)
		SELECT CAST(? AS TEXT), CAST(? AS TEXT), 0, CAST(? AS BIGINT) WHERE CAST(? AS BIGINT) <= CAST(? AS BIGINT)
		ON CONFLICT (key_id, month) DO UPDATE SET held_micros = key_month_usage.held_micros + excluded.held_micros
		WHERE key_month_usage.spent_micros + key_month_usage.held_micros + excluded.held_micros <= ?`)
	qKeyMonthToDate = newQuery(`SELECT COALESCE(SUM(spent_micros + held_micros), 0) FROM key_month_usage WHERE key_id = ? AND month = ?`)
	// A hold that takes the available balance below the auto top-up
	// threshold or the low-balance warning flips that state in the same
	// update (see crossings).
	qHoldWallet = newQuery(`UPDATE wallets SET held_micros = held_micros + ?1, updated_at = ?2` +
		crossings("balance_micros - held_micros - debt_micros - ?1") +
		` WHERE account_id = ?3 AND balance_micros - held_micros - debt_micros >= ?4`)
	qWalletAvailable = newQuery(`SELECT balance_micros - held_micros - debt_micros FROM wallets WHERE account_id = ?`)
	// Ending a hold and completing its request is one guarded update: it
	// changes the row only while the hold is open, so a hold ends once.
	qCompleteHeld = newQuery(`UPDATE requests SET hold_status = ?, hold_ended_at = ?, status = ?, error_type = ?,
		error_message = ?, error_body = ?, latency_ms = ?, prompt_tokens = ?, completion_tokens = ?, charged_micros = ?,
		billing_outcome = ?, outcome_detail = ?, completed_at = ? WHERE id = ? AND hold_status = 'open'`)
	// The same for a call without an error whose row has none either: its
	// error columns stay as they are, and so does their index.
	qCompleteHeldClean = newQuery(`UPDATE requests SET hold_status = ?, hold_ended_at = ?, status = ?, latency_ms = ?,
		prompt_tokens = ?, completion_tokens = ?, charged_micros = ?, billing_outcome = ?, outcome_detail = ?,
		completed_at = ? WHERE id = ? AND hold_status = 'open' AND error_type = '' AND error_message = ''
		AND error_body = ''`)
	// The charge's balance_after is read from the wallet row the same
	// transaction just updated.
	qInsertCharge = newQuery(`INSERT INTO ledger_entries (id, account_id, kind, amount_micros, balance_after_micros,
		request_id, memo, created_at) SELECT ?, account_id, ?, ?, balance_micros, ?, ?, ? FROM wallets WHERE account_id = ?`)
	qEndHold = newQuery(`UPDATE requests SET hold_status = ?, hold_ended_at = ?, charged_micros = ?
		WHERE id = ? AND hold_status = 'open'`)
	qSettleKeyMonth = newQuery(`UPDATE key_month_usage SET held_micros = held_micros - ?, spent_micros = spent_micros + ?
		WHERE key_id = ? AND month = ?`)
	qSettleWallet = newQuery(`UPDATE wallets SET held_micros = held_micros - ?, balance_micros = balance_micros - ?,
		updated_at = ? WHERE account_id = ?`)
	qUnholdKeyMonth = newQuery(`UPDATE key_month_usage SET held_micros = held_micros - ? WHERE key_id = ? AND month = ?`)

	// The outcome of a call whose hold the reaper expired, unless the call
	// already has one of its own (a task's).
	qExpireOutcome = newQuery(`UPDATE requests SET billing_outcome = '` + OutcomeNotChargedExpired + `', charged_micros = 0,
		completed_at = ?, outcome_detail = 'the call did not finish before its hold expired'
		WHERE id = ? AND billing_outcome = '` + OutcomePending + `'`)

	// A late charge: the call's hold was expired by the reaper before the
	// call settled. It finds the row the reaper left, takes what the
	// wallet can give without going below zero, and records the rest as
	// the wallet's debt.
	qExpiredUnsettled = newQuery(`SELECT COUNT(*) FROM requests WHERE id = ? AND hold_status = 'expired'
		AND billing_outcome = '` + OutcomeNotChargedExpired + `'`)
	qWalletSpendable = newQuery(`SELECT balance_micros - held_micros FROM wallets WHERE account_id = ?`)
	qChargeLate      = newQuery(`UPDATE wallets SET balance_micros = balance_micros - ?1, debt_micros = debt_micros + ?2,
		updated_at = ?3` + crossings("balance_micros - held_micros - debt_micros - ?1 - ?2") +
		` WHERE account_id = ?4 AND balance_micros - held_micros >= ?5`)
	qCompleteLate = newQuery(`UPDATE requests SET status = ?, error_type = ?, error_message = ?, error_body = ?,
		latency_ms = ?, prompt_tokens = ?, completion_tokens = ?, charged_micros = ?, billing_outcome = ?,
		outcome_detail = ?, completed_at = ? WHERE id = ? AND hold_status = 'expired'
		AND billing_outcome = '` + OutcomeNotChargedExpired + `'`)
)

// StartCall places a call's hold and writes its request row, outcome
// pending, in one transaction: first the key's monthly limit, then the
// wallet, each one guarded update, never read-then-write. It returns a
// *QuotaError or *ShortfallError, having written nothing, when either
// cannot take the hold.
func (s *Store) StartCall(ctx context.Context, r *Request, keyID string, limit *int64, hold int64, ttl time.Duration) (*Hold, error) {
	h, decide, record, err := s.startCall(r, keyID, limit, hold, ttl)
	if err != nil {
		return nil, err
	}
	if err := s.batch.wait(s.batch.enqueue(&batchOp{fn: decide, then: record, hold: &holdWrite{h: h, limit: limit}})); err != nil {
		r.unhold()
		return nil, err
	}
	return h, nil
}

// StartCallEarly is StartCall for a caller with work to do while the hold
// commits. On SQLite it returns as soon as the hold is decided — its
// guarded updates ran inside the writer's transaction — and the request
// row's insert and the commit go on meanwhile; committed waits for them.
// Until committed returns nil the caller must not answer its client,
// settle the hold or touch r; committed's error is final and the same as
// StartCall's (nothing held). An error returned at once is final too.
func (s *Store) StartCallEarly(ctx context.Context, r *Request, keyID string, limit *int64, hold int64, ttl time.Duration) (_ *Hold, committed func() error, _ error) {
	h, decide, record, err := s.startCall(r, keyID, limit, hold, ttl)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) error {
		r.unhold()
		return err
	}
	err, final := s.batch.doEarly(&batchOp{fn: decide, then: record, hold: &holdWrite{h: h, limit: limit}})
	if err != nil {
		return nil, nil, fail(err)
	}
	return h, func() error {
		if err := final(); err != nil {
			return fail(err)
		}
		return nil
	}, nil
}

// startCall prepares a call's hold and the write that places it, in two
// parts: decide takes the hold on the key's month and the wallet, or
// refuses it having changed nothing; record then writes the request row
// that carries the hold.
func (s *Store) startCall(r *Request, keyID string, limit *int64, hold int64, ttl time.Duration) (h *Hold, decide, record func(*wtx) error, _ error) {
	if r.AccountID == nil {
		return nil, nil, nil, errors.New("start call: request without an account")
	}
	now := time.Now().UTC()
	h = &Hold{
		AccountID: *r.AccountID, KeyID: keyID, RequestID: r.ID, Month: MonthOf(now),
		AmountMicros: hold, CreatedAt: now, ExpiresAt: now.Add(ttl),
	}
	r.HoldMicros = hold
	r.BillingOutcome = OutcomePending
	r.HoldStatus, r.HeldAt, r.HoldExpiresAt = HoldOpen, &h.CreatedAt, &h.ExpiresAt
	return h, func(w *wtx) error {
		// One guarded upsert: the key's month takes the hold only if it
		// stays within the limit, whether or not the month has a row yet.
		// Without a limit it always does, and goes with the wallet's
		// update (one round trip on PostgreSQL).
		if limit == nil {
			if err := w.later(qHoldKeyMonth, keyID, h.Month, hold); err != nil {
				return err
			}
		} else {
			n, err := w.exec(qHoldKeyMonthLimited, keyID, h.Month, hold, hold, *limit, *limit)
			if err != nil {
				return err
			}
			if n == 0 {
				mtd, err := w.queryInt(qKeyMonthToDate, keyID, h.Month)
				if err != nil {
					return err
				}
				return &QuotaError{LimitMicros: *limit, MonthToDateMicros: mtd, HoldMicros: hold}
			}
		}

		n, err := w.exec(qHoldWallet, hold, now, h.AccountID, hold)
		if err != nil {
			return err
		}
		if n == 0 {
			// Give the key's month its hold back: the refusal leaves
			// nothing behind, even when this write shares its transaction.
			if _, err := w.exec(qUnholdKeyMonth, hold, keyID, h.Month); err != nil {
				return err
			}
			available, err := w.queryInt(qWalletAvailable, h.AccountID)
			if err != nil {
				return err
			}
			return &ShortfallError{AvailableMicros: available, HoldMicros: hold}
		}
		return nil
	}, func(w *wtx) error { return insertHeld(w, r) }, nil
}

// insertHeld writes the row of a call whose hold was just placed.
func insertHeld(w *wtx, r *Request) error {
	if r.ErrorType != "" || r.ErrorMessage != "" || r.ErrorBody != "" || r.LatencyMS != 0 || r.PromptTokens != 0 ||
		r.CompletionTokens != 0 || r.ChargedMicros != 0 || r.OutcomeDetail != "" || r.CompletedAt != nil {
		return insertRequest(w, r) // more than a fresh call's row: write it all
	}
	return w.later(qInsertHeld, r.values(func(c requestColumn) bool { return c.held })...)
}

func insertRequest(w *wtx, r *Request) error {
	return w.later(qInsertRequest, r.values(func(c requestColumn) bool { return c.insert })...)
}

// FinishCall captures a hold at the call's real cost (never more than the
// hold) and completes its request row, in one transaction.
//
// When the hold had already expired (the reaper ended it while the call
// still ran: its instance could not keep it alive), what was delivered is
// charged all the same, late: the wallet gives what its balance not held
// by other calls allows, never going below zero, and the rest becomes the
// wallet's debt. The row says so in its outcome detail.
func (s *Store) FinishCall(ctx context.Context, h *Hold, r *Request, cost int64) error {
	cost = min(max(cost, 0), h.AmountMicros)
	now := time.Now().UTC()
	outcome := r.BillingOutcome
	if outcome == "" || outcome == OutcomePending {
		outcome = OutcomeCharged
	}
	sw := &settleWrite{h: h, r: r, status: HoldCaptured, cost: cost, outcome: outcome, now: now}
	if s.batch.pg {
		ended, err := s.endCall(sw)
		if err != nil || ended || cost == 0 {
			return err
		}
		return s.batch.do(func(w *wtx) error { return chargeLate(w, h, r, cost, outcome, now) })
	}
	return s.batch.wait(s.batch.enqueue(&batchOp{fn: func(w *wtx) error {
		ok, err := completeHeld(w, h, r, HoldCaptured, cost, outcome, now)
		if err != nil {
			return err
		}
		if ok {
			return settleHold(w, h, HoldCaptured, cost, now)
		}
		if cost == 0 {
			return nil
		}
		return chargeLate(w, h, r, cost, outcome, now)
	}, settle: sw}))
}

// endCall ends sw's hold on PostgreSQL, in one statement (settleOne) or
// with the other holds its group ends, and reports whether the hold was
// still open; when it was not, nothing was written, unless the group's
// bulk settlement charged it late already (then it reports true).
func (s *Store) endCall(sw *settleWrite) (bool, error) {
	ended := int64(-1) // bulk ended it with the group's others
	err := s.batch.wait(s.batch.enqueue(&batchOp{fn: func(w *wtx) error { return settleOne(w, sw, &ended) }, settle: sw}))
	if err != nil {
		return false, err
	}
	if ended == 1 {
		sw.ended()
	}
	return ended != 0, nil
}

// chargeLate charges cost for a call whose hold the reaper expired, once:
// only a row still as the reaper left it is charged.
func chargeLate(w *wtx, h *Hold, r *Request, cost int64, outcome string, now time.Time) error {
	if n, err := w.queryInt(qExpiredUnsettled, h.RequestID); err != nil || n == 0 {
		return err
	}
	// Read, then a guarded update: the guard keeps the wallet from going
	// below zero should another instance's hold land in between (then the
	// read is taken again).
	var paid int64
	for attempt := 0; ; attempt++ {
		spendable, err := w.queryInt(qWalletSpendable, h.AccountID)
		if err != nil {
			return err
		}
		paid = min(cost, max(spendable, 0))
		n, err := w.exec(qChargeLate, paid, cost-paid, now, h.AccountID, paid)
		if err != nil {
			return err
		}
		if n == 1 {
			break
		}
		if attempt == 4 {
			return fmt.Errorf("late charge of %s: the wallet kept changing", h.RequestID)
		}
	}
	detail := r.OutcomeDetail
	if detail != "" {
		detail += "; "
	}
	detail += "the hold had expired before the call settled, so it was charged afterwards"
	if paid < cost {
		m := FormatUSDs(paid, cost-paid)
		detail += fmt.Sprintf(": %s from the balance and %s recorded as outstanding, paid by the next recharge", m[0], m[1])
	}
	if err := w.later(qUsageUncountExpired, h.RequestID); err != nil {
		return err
	}
	if _, err := w.exec(qCompleteLate, r.Status, r.ErrorType, r.ErrorMessage, r.ErrorBody, r.LatencyMS, r.PromptTokens,
		r.CompletionTokens, cost, outcome, detail, now, h.RequestID); err != nil {
		return err
	}
	if _, err := w.exec(qSettleKeyMonth, 0, cost, h.KeyID, h.Month); err != nil {
		return err
	}
	r.ChargedMicros, r.BillingOutcome, r.OutcomeDetail, r.CompletedAt = cost, outcome, detail, &now
	w.countUsage(h.AccountID, h.KeyID, r, outcome, paid, now) // the roll-up's spend is the ledger's
	if paid == 0 {
		return nil
	}
	_, err := w.exec(qInsertCharge, w.ids.newID("led"), LedgerCharge, -paid, h.RequestID, "API call "+h.RequestID, now, h.AccountID)
	return err
}

// ReleaseCall ends a hold without charging (upstream failure, cancel) and
// completes the request row with outcome, in one transaction.
func (s *Store) ReleaseCall(ctx context.Context, h *Hold, r *Request, outcome string) error {
	now := time.Now().UTC()
	sw := &settleWrite{h: h, r: r, status: HoldReleased, outcome: outcome, now: now}
	if s.batch.pg {
		_, err := s.endCall(sw)
		return err
	}
	return s.batch.wait(s.batch.enqueue(&batchOp{fn: func(w *wtx) error {
		ok, err := completeHeld(w, h, r, HoldReleased, 0, outcome, now)
		if err != nil || !ok {
			return err
		}
		return settleHold(w, h, HoldReleased, 0, now)
	}, settle: sw}))
}

// completeHeld ends r's open hold as status and completes r with the
// charge and outcome, in one guarded update. It reports false, changing
// nothing, when the hold had already ended.
func completeHeld(w *wtx, h *Hold, r *Request, status string, charged int64, outcome string, now time.Time) (bool, error) {
	ok, err := completeHelds(w, []*settleWrite{{h: h, r: r, status: status, cost: charged, outcome: outcome, now: now}})
	if err != nil {
		return false, err
	}
	return ok[0], nil
}

// completeHelds is completeHeld for several calls, their guarded updates
// sent together (one round trip on PostgreSQL, a second only for a row
// with an error to record or clear): ok[i] reports whether sws[i]'s hold
// was still open and is now ended.
func completeHelds(w *wtx, sws []*settleWrite) (ok []bool, err error) {
	if len(sws) > 1 && sameRequestTwice(sws) {
		// The first to end a hold is the one in order: one at a time.
		ok = make([]bool, len(sws))
		for i, sw := range sws {
			one, err := completeHelds(w, []*settleWrite{sw})
			if err != nil {
				return nil, err
			}
			ok[i] = one[0]
		}
		return ok, nil
	}
	n := make([]int64, len(sws))
	// send runs q, in one batch, for each write args gives arguments for
	// (nil: none), and records how many rows each changed.
	send := func(q *query, args func(i int, sw *settleWrite) []any) error {
		var batch [][]any
		var at []int
		for i, sw := range sws {
			if a := args(i, sw); a != nil {
				batch, at = append(batch, a), append(at, i)
			}
		}
		if len(batch) == 0 {
			return nil
		}
		got, err := w.execEach(q, batch)
		for j, i := range at[:len(got)] {
			n[i] = got[j]
		}
		return err
	}
	err = send(qCompleteHeldClean, func(_ int, sw *settleWrite) []any {
		if r := sw.r; r.ErrorType == "" && r.ErrorMessage == "" && r.ErrorBody == "" {
			return []any{sw.status, sw.now, r.Status, r.LatencyMS, r.PromptTokens, r.CompletionTokens,
				sw.cost, sw.outcome, r.OutcomeDetail, sw.now, sw.h.RequestID}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// An error to record or clear, or the hold had ended.
	err = send(qCompleteHeld, func(i int, sw *settleWrite) []any {
		if r := sw.r; n[i] == 0 {
			return []any{sw.status, sw.now, r.Status, r.ErrorType, r.ErrorMessage, r.ErrorBody, r.LatencyMS,
				r.PromptTokens, r.CompletionTokens, sw.cost, sw.outcome, r.OutcomeDetail, sw.now, sw.h.RequestID}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	ok = make([]bool, len(sws))
	for i, sw := range sws {
		if n[i] == 0 {
			continue
		}
		ok[i] = true
		sw.ended()
		w.countUsage(sw.h.AccountID, sw.h.KeyID, sw.r, sw.outcome, sw.cost, sw.now)
	}
	return ok, nil
}

func sameRequestTwice(sws []*settleWrite) bool {
	seen := make(map[string]bool, len(sws))
	for _, sw := range sws {
		if seen[sw.h.RequestID] {
			return true
		}
		seen[sw.h.RequestID] = true
	}
	return false
}

// endHold moves an open hold to status exactly once, with its request
// row's charge (cost, captured only; 0 when released or expired), and
// settles it (settleHold); the row's outcome is the caller's to set. It
// reports false when the hold had already ended, having changed nothing.
func endHold(w *wtx, h *Hold, status string, cost int64, now time.Time) (bool, error) {
	n, err := w.exec(qEndHold, status, now, cost, h.RequestID)
	if err != nil || n == 0 {
		return false, err
	}
	return true, settleHold(w, h, status, cost, now)
}

// settleHold gives back what a hold that just ended held on the key's
// month and the wallet; with status captured, cost moves from held to
// spent, leaves the balance and is charged in the ledger.
func settleHold(w *wtx, h *Hold, status string, cost int64, now time.Time) error {
	// Rows are locked in the same order as StartCall (key usage, then
	// wallet), so concurrent calls on PostgreSQL cannot deadlock.
	if err := w.later(qSettleKeyMonth, h.AmountMicros, cost, h.KeyID, h.Month); err != nil {
		return err
	}
	if err := w.later(qSettleWallet, h.AmountMicros, cost, now, h.AccountID); err != nil {
		return err
	}
	if status != HoldCaptured || cost == 0 {
		return nil
	}
	err := w.later(qInsertCharge, w.ids.newID("led"), LedgerCharge, -cost, h.RequestID, "API call "+h.RequestID, now, h.AccountID)
	return err
}

// ExpireHolds releases every open hold past its expiry, as expired, and
// marks its request not_charged_expired. Each hold ends exactly once even
// when several reapers run at the same time: the guarded update in endHold
// lets only one of them end it.
func (s *Store) ExpireHolds(ctx context.Context, now time.Time) (int, error) {
	var due []Request
	// The status as a literal, so that the partial index of open holds serves.
	if err := s.db.w.WithContext(ctx).Where("hold_status = 'open' AND hold_expires_at < ?", now.UTC()).
		Order("hold_expires_at").Limit(500).Find(&due).Error; err != nil {
		return 0, err
	}
	n := 0
	for i := range due {
		h := holdOf(&due[i])
		ended := false
		err := s.write(ctx, func(w *wtx) error {
			ended = false // a write run again starts over
			ok, err := endHold(w, h, HoldExpired, 0, now.UTC())
			if err != nil || !ok {
				return err
			}
			ended = true
			n, err := w.exec(qExpireOutcome, now.UTC(), h.RequestID)
			if n == 1 {
				w.countUsage(h.AccountID, h.KeyID, &due[i], OutcomeNotChargedExpired, 0, now)
			}
			return err
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

// KeepHoldsAlive pushes the expiry of the open holds of the calls ids to
// until, so the reaper leaves them alone while this instance still serves
// them: one statement for up to 500 calls. It returns the ids whose hold
// is no longer open (the reaper ended it, say after the instance lost the
// database for longer than the TTL); their calls must stop at once.
func (s *Store) KeepHoldsAlive(ctx context.Context, ids []string, until time.Time) (ended []string, _ error) {
	db := s.db.w.WithContext(ctx)
	for len(ids) > 0 {
		part := ids[:min(len(ids), 500)]
		ids = ids[len(part):]
		var renewed []string
		if err := db.Raw(`UPDATE requests SET hold_expires_at = ? WHERE hold_status = 'open' AND id IN ? RETURNING id`,
			until.UTC(), part).Scan(&renewed).Error; err != nil {
			return nil, err
		}
		for _, id := range part {
			if !slices.Contains(renewed, id) {
				ended = append(ended, id)
			}
		}
	}
	return ended, nil
}
