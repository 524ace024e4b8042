package models

import (
	"cmp"
	"maps"
	"slices"
	"time"
)

// A group commit places the holds of its calls, and ends them, together:
// an account's wallet and a key's month are each updated once per group,
// for the sum of its calls, whatever their number. On PostgreSQL a busy
// account's wallet row is then locked once per group rather than once per
// call, and on both engines a call costs fewer statements.
//
// Holds are decided one by one in arrival order, exactly as when each
// runs alone: against the key's month and the wallet as read at the start
// of the group, plus the holds accepted before it in the group. The
// updates that follow are guarded by the sums (the key's month stays
// within its limit, the wallet's available balance covers them), so no
// wallet is overdrawn and no limit passed however many instances write at
// once. Should a guard refuse (another instance took the room since the
// read), that account's holds are placed one by one instead.

// holdWrite is a hold to place with the group's others.
type holdWrite struct {
	h     *Hold
	limit *int64 // the key's monthly limit; nil for none
}

// settleWrite ends a hold with the group's others: captured at cost, or
// released, completing its request row with outcome.
type settleWrite struct {
	h       *Hold
	r       *Request
	status  string
	cost    int64
	outcome string
	now     time.Time
}

var (
	qHoldKeyMonthSum = newQuery(`INSERT INTO key_month_usage (key_id, month, spent_micros, held_micros)
		SELECT CAST(? AS TEXT), CAST(? AS TEXT), 0, CAST(? AS BIGINT) WHERE CAST(? AS BIGINT) <= CAST(? AS BIGINT)
		ON CONFLICT (key_id, month) DO UPDATE SET held_micros = key_month_usage.held_micros + excluded.held_micros
		WHERE key_month_usage.spent_micros + key_month_usage.held_micros + excluded.held_micros <= ?`)
	// A charge's balance after is the wallet's, read after the group's
	// update, plus the charges the group makes after it.
	qInsertChargeAfter = newQuery(`INSERT INTO ledger_entries (id, account_id, kind, amount_micros, balance_after_micros,
		request_id, memo, created_at) SELECT ?, account_id, ?, ?, balance_micros + ?, ?, ?, ? FROM wallets
		WHERE account_id = ?`)
)

// bulk places and ends, together, the holds among ops, marking each op
// it ran done; the others are left to run one by one. Its error is a
// failure that must roll the group back.
func (b *batcher) bulk(w *wtx, ops []*batchOp) error {
	var holds, settles []*batchOp
	for _, o := range ops {
		switch {
		case o.hold != nil:
			holds = append(holds, o)
		case o.settle != nil:
			settles = append(settles, o)
		}
	}
	if len(holds) > 1 {
		if err := b.placeHolds(w, holds); err != nil {
			return err
		}
	}
	if len(settles) > 1 {
		return settleHolds(w, settles)
	}
	return nil
}

// placeHolds places holds, account by account.
func (b *batcher) placeHolds(w *wtx, ops []*batchOp) error {
	byAccount := map[string][]*batchOp{}
	var accounts []string
	for _, o := range ops {
		a := o.hold.h.AccountID
		if byAccount[a] == nil {
			accounts = append(accounts, a)
		}
		byAccount[a] = append(byAccount[a], o)
	}
	slices.Sort(accounts) // every group locks rows in one order
	for _, a := range accounts {
		if len(byAccount[a]) == 1 {
			continue // alone, its own statements are fewer
		}
		ok, err := b.placeAccountHolds(w, a, byAccount[a])
		if err != nil {
			return err
		}
		if !ok {
			continue // left to run one by one
		}
		b.bulkHolds.Add(int64(len(byAccount[a])))
		for _, o := range byAccount[a] {
			o.done = true
			b.told(o)
			if o.err == nil && o.then != nil {
				if o.err = call(o.then, w); o.err != nil {
					return o.err
				}
			}
		}
	}
	return nil
}

type keyMonth struct{ key, month string }

// placeAccountHolds decides the holds of one account in order and applies
// them with one update of each key's month and one of the wallet. It
// reports false, having changed nothing, when a guard refused the sums.
func (b *batcher) placeAccountHolds(w *wtx, account string, ops []*batchOp) (bool, error) {
	available, err := w.queryInt(qWalletAvailable, account)
	if err != nil {
		return false, err
	}
	mtd := map[keyMonth]int64{} // month-to-date of limited keys, as decided so far
	sum := map[keyMonth]int64{}
	limit := map[keyMonth]int64{} // the lowest limit an accepted hold was checked against
	var keys []keyMonth
	var total int64
	for _, o := range ops {
		h := o.hold.h
		km := keyMonth{h.KeyID, h.Month}
		if l := o.hold.limit; l != nil {
			m, seen := mtd[km]
			if !seen {
				if m, err = w.queryInt(qKeyMonthToDate, h.KeyID, h.Month); err != nil {
					return false, err
				}
				mtd[km] = m
			}
			if m+h.AmountMicros > *l {
				o.err = &QuotaError{LimitMicros: *l, MonthToDateMicros: m, HoldMicros: h.AmountMicros}
				continue
			}
		}
		if h.AmountMicros > available-total {
			o.err = &ShortfallError{AvailableMicros: available - total, HoldMicros: h.AmountMicros}
			continue
		}
		o.err = nil
		total += h.AmountMicros
		if _, seen := sum[km]; !seen {
			keys = append(keys, km)
		}
		sum[km] += h.AmountMicros
		if l := o.hold.limit; l != nil {
			mtd[km] += h.AmountMicros
			if cur, seen := limit[km]; !seen || *l < cur {
				limit[km] = *l
			}
		}
	}
	slices.SortFunc(keys, func(x, y keyMonth) int { return cmp.Or(cmp.Compare(x.key, y.key), cmp.Compare(x.month, y.month)) })
	undo := func(applied []keyMonth) error {
		for _, km := range applied {
			if _, err := w.exec(qUnholdKeyMonth, sum[km], km.key, km.month); err != nil {
				return err
			}
		}
		return nil
	}
	for i, km := range keys {
		var n int64
		if l, limited := limit[km]; limited {
			n, err = w.exec(qHoldKeyMonthSum, km.key, km.month, sum[km], sum[km], l, l)
		} else {
			n, err = 1, w.later(qHoldKeyMonth, km.key, km.month, sum[km]) // always takes it
		}
		if err != nil {
			return false, err
		}
		if n == 0 {
			return false, undo(keys[:i])
		}
	}
	if total > 0 {
		n, err := w.exec(qHoldWallet, total, time.Now().UTC(), account, total)
		if err != nil {
			return false, err
		}
		if n == 0 {
			return false, undo(keys)
		}
	}
	return true, nil
}

// settleHolds ends holds: each request row in its own guarded update (a
// hold ends once), then each key's month and each wallet once for the
// sums, and a ledger charge per captured call, its balance after as if
// the charges had been made one by one in order.
func settleHolds(w *wtx, ops []*batchOp) error {
	type sums struct{ held, spent int64 }
	byKey := map[keyMonth]*sums{}
	byAccount := map[string]*sums{}
	var charged []*settleWrite
	sws := make([]*settleWrite, len(ops))
	for i, o := range ops {
		o.done = true
		sws[i] = o.settle
	}
	ended, err := completeHelds(w, sws)
	if err != nil {
		return err
	}
	for i, sw := range sws {
		if !ended[i] {
			if sw.status == HoldCaptured && sw.cost > 0 {
				if err := chargeLate(w, sw.h, sw.r, sw.cost, sw.outcome, sw.now); err != nil {
					return err
				}
			}
			continue
		}
		km := keyMonth{sw.h.KeyID, sw.h.Month}
		if byKey[km] == nil {
			byKey[km] = &sums{}
		}
		byKey[km].held += sw.h.AmountMicros
		byKey[km].spent += sw.cost
		if byAccount[sw.h.AccountID] == nil {
			byAccount[sw.h.AccountID] = &sums{}
		}
		byAccount[sw.h.AccountID].held += sw.h.AmountMicros
		byAccount[sw.h.AccountID].spent += sw.cost
		if sw.status == HoldCaptured && sw.cost > 0 {
			charged = append(charged, sw)
		}
	}
	for _, km := range slices.SortedFunc(maps.Keys(byKey), func(x, y keyMonth) int {
		return cmp.Or(cmp.Compare(x.key, y.key), cmp.Compare(x.month, y.month))
	}) {
		if err := w.later(qSettleKeyMonth, byKey[km].held, byKey[km].spent, km.key, km.month); err != nil {
			return err
		}
	}
	now := time.Now().UTC()
	for _, a := range slices.Sorted(maps.Keys(byAccount)) {
		if err := w.later(qSettleWallet, byAccount[a].held, byAccount[a].spent, now, a); err != nil {
			return err
		}
	}
	// As if charged one by one in order: each charge's balance after is
	// the wallet's after the group plus the charges that follow it.
	after := map[string]int64{}
	for a, s := range byAccount {
		after[a] = s.spent
	}
	for _, sw := range charged {
		after[sw.h.AccountID] -= sw.cost
		err := w.later(qInsertChargeAfter, w.ids.newID("led"), LedgerCharge, -sw.cost, after[sw.h.AccountID],
			sw.h.RequestID, "API call "+sw.h.RequestID, sw.now, sw.h.AccountID)
		if err != nil {
			return err
		}
	}
	return nil
}
