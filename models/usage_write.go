package models

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"time"
)

// The usage roll-up (usage_hourly, migrations 15 and 21) is written by the
// money path, in the transaction that gives a request its final outcome or
// charges it: a request is counted once, when it leaves pending (or is
// logged with its outcome), in the UTC hour of that moment, which is the
// hour of its ledger charge, and in its outcome's column. A group commit
// sums its writes' counts and writes each (account, hour, key, model)
// once, just before it commits (flushUsage): one upsert per row of the
// roll-up per group, whatever the number of calls, and taken last, so the
// roll-up's rows are never locked before a wallet's by one group and after
// it by another.

// usageKey is one row of the roll-up.
type usageKey struct{ account, hour, key, model string }

// usageOutcomes are the final outcomes the roll-up counts requests by, each
// a column named as the outcome, in the order of usageSum.outcomes.
var usageOutcomes = [...]string{OutcomeCharged, OutcomeChargedPartial, OutcomeNotChargedRejected,
	OutcomeNotChargedFailed, OutcomeNotChargedCancel, OutcomeNotChargedExpired, OutcomeNotChargedFree}

// usageSum is what a write adds to a row of the roll-up: its totals, and
// its requests by outcome.
type usageSum struct {
	UsageTotals
	outcomes [len(usageOutcomes)]int64
}

func (t *usageSum) add(s usageSum) {
	t.UsageTotals.add(s.UsageTotals)
	for i, n := range s.outcomes {
		t.outcomes[i] += n
	}
}

// usageHour is the roll-up's hour of t: "2026-11-25 14", UTC.
func usageHour(t time.Time) string { return t.UTC().Format(usageHourLayout) }

const usageHourLayout = "2006-01-02 15"

// usageSet adds each of the roll-up's counts of excluded to the row's.
var usageSet = func() string {
	cols := append([]string{"requests", "errors", "prompt_tokens", "completion_tokens", "spend_micros"}, usageOutcomes[:]...)
	for i, c := range cols {
		cols[i] = c + " = usage_hourly." + c + " + excluded." + c
	}
	return strings.Join(cols, ", ")
}()

var (
	qUsageAdd = newQuery(`INSERT INTO usage_hourly (account_id, hour_utc, key_id, model, requests, errors,
		prompt_tokens, completion_tokens, spend_micros, ` + strings.Join(usageOutcomes[:], ", ") + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (account_id, hour_utc, key_id, model) DO UPDATE SET ` + usageSet)
	// A request whose hold the reaper expired was counted then; a late
	// charge counts it again with its new outcome, so it is first taken
	// out of the row the reaper counted it in, as the row still says.
	qUsageUncountExpired = newQuery(`INSERT INTO usage_hourly (account_id, hour_utc, key_id, model, requests,
		errors, prompt_tokens, completion_tokens, spend_micros, ` + OutcomeNotChargedExpired + `)
		SELECT account_id, substr(CAST(completed_at AS TEXT), 1, 13), COALESCE(key_id, ''), model, -1,
		CASE WHEN status >= 400 THEN -1 ELSE 0 END, -prompt_tokens, -completion_tokens, -charged_micros, -1
		FROM requests WHERE id = ? AND account_id IS NOT NULL AND completed_at IS NOT NULL
		AND hold_status = 'expired' AND billing_outcome = '` + OutcomeNotChargedExpired + `'
		ON CONFLICT (account_id, hour_utc, key_id, model) DO UPDATE SET ` + usageSet)
)

// countUsage counts request r in the roll-up with its final outcome and
// what it was charged (spend, as the ledger's charge), at the time at
// which it got them. Call it once the write can no longer refuse.
func (w *wtx) countUsage(account, key string, r *Request, outcome string, spend int64, at time.Time) {
	w.addUsage(usageKey{account: account, hour: usageHour(at), key: key, model: r.Model},
		oneRequest(outcome, r.Status, int64(r.PromptTokens), int64(r.CompletionTokens), spend))
}

// oneRequest is the roll-up's count of one request.
func oneRequest(outcome string, status int, prompt, completion, spend int64) usageSum {
	s := usageSum{UsageTotals: UsageTotals{Requests: 1, PromptTokens: prompt, CompletionTokens: completion, SpendMicros: spend}}
	if status >= 400 {
		s.Errors = 1
	}
	// An outcome the roll-up has no column for is counted in requests
	// only, which UsageInvariant reports.
	if i := slices.Index(usageOutcomes[:], outcome); i >= 0 {
		s.outcomes[i] = 1
	}
	return s
}

// args are qUsageAdd's arguments that add s to row k: a new slice each
// time, as PostgreSQL's batch keeps it until the commit.
func (s usageSum) args(k usageKey) []any {
	args := make([]any, 0, 9+len(usageOutcomes))
	args = append(args, k.account, k.hour, k.key, k.model, s.Requests, s.Errors, s.PromptTokens, s.CompletionTokens,
		s.SpendMicros)
	for _, n := range s.outcomes {
		args = append(args, n)
	}
	return args
}

// addUsage adds s to the roll-up's row k when the transaction commits.
func (w *wtx) addUsage(k usageKey, s usageSum) {
	if w.usage == nil {
		w.usage = make(map[usageKey]usageSum, 4)
	}
	t := w.usage[k]
	t.add(s)
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
			cmp.Compare(x.model, y.model))
	})
	for _, k := range keys {
		if err := w.later(qUsageAdd, w.usage[k].args(k)...); err != nil {
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
