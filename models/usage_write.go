package models

import (
	"cmp"
	"maps"
	"slices"
	"time"
)

// The usage roll-up (usage_hourly, migration 15) is written by the money
// path, in the transaction that gives a request its final outcome or
// charges it: a request is counted once, when it leaves pending (or is
// logged with its outcome), in the UTC hour of that moment, which is the
// hour of its ledger charge. A group commit sums its writes' counts and
// writes each (account, hour, key, model, outcome) once, just before it
// commits (flushUsage): one upsert per row of the roll-up per group,
// whatever the number of calls, and taken last, so the roll-up's rows are
// never locked before a wallet's by one group and after it by another.

// usageKey is one row of the roll-up.
type usageKey struct{ account, hour, key, model, outcome string }

// usageSum is what a write adds to a row of the roll-up.
type usageSum struct{ requests, errors, prompt, completion, spend int64 }

// usageHour is the roll-up's hour of t: "2026-11-25 14", UTC.
func usageHour(t time.Time) string { return t.UTC().Format(usageHourLayout) }

const usageHourLayout = "2006-01-02 15"

var (
	qUsageAdd = newQuery(`INSERT INTO usage_hourly (account_id, hour_utc, key_id, model, outcome, requests, errors,
		prompt_tokens, completion_tokens, spend_micros) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (account_id, hour_utc, key_id, model, outcome) DO UPDATE SET
		requests = usage_hourly.requests + excluded.requests, errors = usage_hourly.errors + excluded.errors,
		prompt_tokens = usage_hourly.prompt_tokens + excluded.prompt_tokens,
		completion_tokens = usage_hourly.completion_tokens + excluded.completion_tokens,
		spend_micros = usage_hourly.spend_micros + excluded.spend_micros`)
	// A request whose hold the reaper expired was counted then; a late
	// charge counts it again with its new outcome, so it is first taken
	// out of the row the reaper counted it in, as the row still says.
	qUsageUncountExpired = newQuery(`INSERT INTO usage_hourly (account_id, hour_utc, key_id, model, outcome, requests,
		errors, prompt_tokens, completion_tokens, spend_micros)
		SELECT account_id, substr(CAST(completed_at AS TEXT), 1, 13), COALESCE(key_id, ''), model, billing_outcome, -1,
		CASE WHEN status >= 400 THEN -1 ELSE 0 END, -prompt_tokens, -completion_tokens, -charged_micros
		FROM requests WHERE id = ? AND account_id IS NOT NULL AND completed_at IS NOT NULL
		AND hold_status = 'expired' AND billing_outcome = '` + OutcomeNotChargedExpired + `'
		ON CONFLICT (account_id, hour_utc, key_id, model, outcome) DO UPDATE SET
		requests = usage_hourly.requests + excluded.requests, errors = usage_hourly.errors + excluded.errors,
		prompt_tokens = usage_hourly.prompt_tokens + excluded.prompt_tokens,
		completion_tokens = usage_hourly.completion_tokens + excluded.completion_tokens,
		spend_micros = usage_hourly.spend_micros + excluded.spend_micros`)
)

// countUsage counts request r in the roll-up with its final outcome and
// what it was charged (spend, as the ledger's charge), at the time at
// which it got them. Call it once the write can no longer refuse.
func (w *wtx) countUsage(account, key string, r *Request, outcome string, spend int64, at time.Time) {
	s := usageSum{requests: 1, prompt: int64(r.PromptTokens), completion: int64(r.CompletionTokens), spend: spend}
	if r.Status >= 400 {
		s.errors = 1
	}
	w.addUsage(usageKey{account: account, hour: usageHour(at), key: key, model: r.Model, outcome: outcome}, s)
}

// addUsage adds s to the roll-up's row k when the transaction commits.
func (w *wtx) addUsage(k usageKey, s usageSum) {
	if w.usage == nil {
		w.usage = make(map[usageKey]usageSum, 4)
	}
	t := w.usage[k]
	t.requests += s.requests
	t.errors += s.errors
	t.prompt += s.prompt
	t.completion += s.completion
	t.spend += s.spend
	w.usage[k] = t
}

// flushUsage writes the transaction's counts, one upsert per row, in one
// order for every transaction.
func (w *wtx) flushUsage() error {
	if len(w.usage) == 0 {
		return nil
	}
	keys := slices.SortedFunc(maps.Keys(w.usage), func(x, y usageKey) int {
		return cmp.Or(cmp.Compare(x.account, y.account), cmp.Compare(x.hour, y.hour), cmp.Compare(x.key, y.key),
			cmp.Compare(x.model, y.model), cmp.Compare(x.outcome, y.outcome))
	})
	for _, k := range keys {
		s := w.usage[k]
		if err := w.later(qUsageAdd, k.account, k.hour, k.key, k.model, k.outcome, s.requests, s.errors, s.prompt,
			s.completion, s.spend); err != nil {
			return err
		}
	}
	clear(w.usage)
	return nil
}

// strOr is *p, or "" for nil.
func strOr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
