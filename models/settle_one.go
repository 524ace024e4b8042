package models

import (
	"strconv"
	"strings"
)

// On PostgreSQL a call's hold ends in one statement sent with the commit:
// one round trip, where the guarded update of the request row followed by
// the settlement would take two (the settlement may run only when the
// guard let the update through). The statement's parts run in the order
// their data needs each other, which is the order of the write path's
// locks (the request row, the key's month, the wallet, then the roll-up's
// row): the key's month is settled only when the hold ended here, the
// wallet when the key's month was, and the charge and the roll-up's count
// follow the wallet. Its one row says whether the hold ended; when it had
// ended before (the reaper expired it), nothing was written and the call
// settles the other way, in a write of its own (FinishCall). SQLite runs
// the same steps statement by statement inside its writer, where a
// statement costs no round trip.
var qSettleOne = newQuery(`WITH ended AS (
		UPDATE requests SET hold_status = ?1, hold_ended_at = ?2, status = ?3, error_type = ?4, error_message = ?5,
			error_body = ?6, latency_ms = ?7, prompt_tokens = ?8, completion_tokens = ?9, charged_micros = ?10,
			billing_outcome = ?11, outcome_detail = ?12, completed_at = ?2
		WHERE id = ?13 AND hold_status = 'open' RETURNING id
	), key_month AS (
		UPDATE key_month_usage SET held_micros = held_micros - ?14, spent_micros = spent_micros + ?10
		WHERE key_id = ?15 AND month = ?16 AND EXISTS (SELECT 1 FROM ended) RETURNING key_id
	), wallet AS (
		UPDATE wallets SET held_micros = held_micros - ?14, balance_micros = balance_micros - ?10, updated_at = ?2
		WHERE account_id = ?17 AND EXISTS (SELECT 1 FROM key_month) RETURNING balance_micros
	), charge AS (
		INSERT INTO ledger_entries (id, account_id, kind, amount_micros, balance_after_micros, request_id, memo,
			created_at)
		SELECT CAST(?18 AS TEXT), ?17, '` + LedgerCharge + `', -?10, balance_micros, ?13, CAST(?19 AS TEXT), ?2
		FROM wallet WHERE ?10 > 0
	), counted AS (
		INSERT INTO usage_hourly (account_id, hour_utc, key_id, model, requests, errors, prompt_tokens,
			completion_tokens, spend_micros, ` + strings.Join(usageOutcomes[:], ", ") + `)
		SELECT ` + usageParams(20) + ` FROM wallet
		ON CONFLICT (account_id, hour_utc, key_id, model) DO UPDATE SET ` + usageSet + `
	)
	SELECT COUNT(*) FROM ended`)

// usageParams are qUsageAdd's values as typed parameters numbered from
// first, in usageSum.args's order.
func usageParams(first int) string {
	types := []string{"TEXT", "TEXT", "TEXT", "TEXT"}
	for range 5 + len(usageOutcomes) {
		types = append(types, "BIGINT")
	}
	params := make([]string, len(types))
	for i, t := range types {
		params[i] = "CAST(?" + strconv.Itoa(first+i) + " AS " + t + ")"
	}
	return strings.Join(params, ", ")
}

// settleOne ends sw's hold, settles it and counts it in the roll-up, the
// way completeHeld, settleHold and countUsage do, as one statement whose
// answer, read with the commit, goes to *ended: 1 when the hold ended
// here, 0 when it had ended before and nothing was written.
func settleOne(w *wtx, sw *settleWrite, ended *int64) error {
	h, r := sw.h, sw.r
	args := []any{sw.status, sw.now, r.Status, r.ErrorType, r.ErrorMessage, r.ErrorBody, r.LatencyMS,
		r.PromptTokens, r.CompletionTokens, sw.cost, sw.outcome, r.OutcomeDetail, h.RequestID,
		h.AmountMicros, h.KeyID, h.Month, h.AccountID, w.ids.newID("led"), "API call " + h.RequestID}
	k := usageKey{account: h.AccountID, hour: usageHour(sw.now), key: h.KeyID, model: r.Model}
	args = append(args, oneRequest(sw.outcome, r.Status, int64(r.PromptTokens), int64(r.CompletionTokens), sw.cost).args(k)...)
	return w.laterInt(qSettleOne, ended, args...)
}

// ended records on r that its hold ended as sw says.
func (sw *settleWrite) ended() {
	now := sw.now
	sw.r.HoldStatus, sw.r.HoldEndedAt, sw.r.ChargedMicros, sw.r.BillingOutcome, sw.r.CompletedAt =
		sw.status, &now, sw.cost, sw.outcome, &now
}
