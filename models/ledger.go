package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Ledger entry kinds.
const (
	LedgerRecharge   = "recharge"
	LedgerCharge     = "charge"
	LedgerAdjustment = "adjustment"
	LedgerRefund     = "refund"
)

// LedgerKindLabel names a ledger entry's kind as a customer reads it.
func LedgerKindLabel(kind string) string {
	switch kind {
	case LedgerRecharge:
		return "Recharge"
	case LedgerCharge:
		return "Charge"
	case LedgerAdjustment:
		return "Adjustment"
	case LedgerRefund:
		return "Refund"
	}
	return kind
}

// LedgerEntry is one change to a wallet's balance. The ledger is
// append-only: a wallet's balance is always the sum of its entries.
type LedgerEntry struct {
	ID                 string
	AccountID          string
	Kind               string
	AmountMicros       int64
	BalanceAfterMicros int64
	RequestID          *string
	PaymentID          *string
	Memo               string
	CreatedAt          time.Time
}

// LedgerRef links a ledger entry to what caused it.
type LedgerRef struct {
	RequestID string
	PaymentID string
}

// MaxMemoLen bounds a ledger memo.
const MaxMemoLen = 500

var (
	// A debit (a negative adjustment) never takes the balance not held by
	// calls or owed below zero.
	// A credit that lifts the available balance back to a threshold arms
	// it again; a debit can cross one like a hold (see crossings).
	qCreditWallet = newQuery(`UPDATE wallets SET balance_micros = balance_micros + ?1, updated_at = ?2` +
		crossingsOrRearm("balance_micros - held_micros - debt_micros + ?1") +
		` WHERE account_id = ?3 AND (CAST(?4 AS BIGINT) >= 0 OR balance_micros - held_micros - debt_micros + CAST(?5 AS BIGINT) >= 0)
		RETURNING balance_micros`)
	// What of its debt a wallet can pay now: all of it, or as much as its
	// balance not held by calls allows.
	qPayableDebt = newQuery(`SELECT CASE WHEN debt_micros < balance_micros - held_micros THEN debt_micros
		ELSE balance_micros - held_micros END FROM wallets WHERE account_id = ?`)
	qPayDebt = newQuery(`UPDATE wallets SET balance_micros = balance_micros - ?, debt_micros = debt_micros - ?, updated_at = ?
		WHERE account_id = ? AND debt_micros >= ? AND balance_micros - held_micros >= ? RETURNING balance_micros`)
	qInsertLedger = newInsert("ledger_entries",
		"id, account_id, kind, amount_micros, balance_after_micros, request_id, payment_id, memo, created_at")
	// A credit is money received: its commit waits for the disk even where
	// PostgreSQL runs with synchronous_commit = off, so a payment the
	// provider was told we took is never lost (with the group it is in).
	qDurableCommit = newQuery(`SET LOCAL synchronous_commit TO ON`)
)

// noWallet refuses a credit to an account without a wallet, having
// written nothing.
type noWallet struct{}

func (noWallet) Error() string { return "no wallet" }
func (noWallet) refused()      {}

// OverdrawError refuses a debit larger than the wallet's available
// balance, having written nothing.
type OverdrawError struct{ AvailableMicros, DebitMicros int64 }

func (e *OverdrawError) Error() string {
	m := FormatUSDs(e.DebitMicros, e.AvailableMicros)
	return fmt.Sprintf("A debit of %s would take the wallet's available balance, %s, below zero; nothing was changed.", m[0], m[1])
}
func (*OverdrawError) refused() {}

// Credit changes an account's balance by amount (negative for a debit
// adjustment) and appends the ledger entry, in one transaction.
func (s *Store) Credit(ctx context.Context, accountID string, amount int64, kind, memo string, ref LedgerRef) (*LedgerEntry, error) {
	if len(memo) > MaxMemoLen {
		return nil, &Error{Code: EINVALID, Message: "The memo is too long.", Fields: map[string]string{"memo": "Use at most 500 characters."}}
	}
	var e *LedgerEntry
	err := s.write(ctx, func(w *wtx) (err error) {
		e, err = credit(w, accountID, amount, kind, memo, ref, time.Now().UTC())
		return err
	})
	if errors.As(err, new(noWallet)) {
		return nil, ErrNotFound
	}
	return e, err
}

// Adjust is an operator's ledger adjustment (negative for a debit, which
// never overdraws): Credit of kind adjustment, with its audit entry in the
// same transaction.
func (s *Store) Adjust(ctx context.Context, accountID string, amount int64, memo string, by Actor) (*LedgerEntry, error) {
	if len(memo) > MaxMemoLen {
		return nil, &Error{Code: EINVALID, Message: "The memo is too long.", Fields: map[string]string{"memo": "Use at most 500 characters."}}
	}
	var e *LedgerEntry
	err := s.write(ctx, func(w *wtx) (err error) {
		if e, err = credit(w, accountID, amount, LedgerAdjustment, memo, LedgerRef{}, time.Now().UTC()); err != nil {
			return err
		}
		m := FormatUSDs(e.BalanceAfterMicros-amount, e.BalanceAfterMicros)
		return auditW(w, by, AuditEntry{AccountID: accountID, Action: AuditBalanceAdjusted, Target: e.ID, TargetLabel: memo,
			Field: "balance", Before: m[0], After: m[1]})
	})
	if errors.As(err, new(noWallet)) {
		return nil, ErrNotFound
	}
	return e, err
}

// credit is Credit inside a write, so that a payment can be marked paid
// and credited atomically.
func credit(w *wtx, accountID string, amount int64, kind, memo string, ref LedgerRef, now time.Time) (*LedgerEntry, error) {
	if w.pgx != nil {
		if err := w.later(qDurableCommit); err != nil {
			return nil, err
		}
	}
	balance, err := w.queryInt(qCreditWallet, amount, now, accountID, amount, amount)
	if errors.Is(err, sql.ErrNoRows) {
		available, err := w.queryInt(qWalletAvailable, accountID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, noWallet{}
		}
		if err != nil {
			return nil, err
		}
		return nil, &OverdrawError{AvailableMicros: available, DebitMicros: -amount}
	}
	if err != nil {
		return nil, err
	}
	e := &LedgerEntry{
		ID: w.ids.newID("led"), AccountID: accountID, Kind: kind, AmountMicros: amount,
		BalanceAfterMicros: balance, Memo: memo, CreatedAt: now,
	}
	if ref.RequestID != "" {
		e.RequestID = &ref.RequestID
	}
	if ref.PaymentID != "" {
		e.PaymentID = &ref.PaymentID
	}
	if err := w.later(qInsertLedger, e.ID, accountID, kind, amount, balance, e.RequestID, e.PaymentID, memo, now); err != nil {
		return nil, err
	}
	if amount > 0 {
		if err := payDebt(w, accountID, now); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// payDebt pays what the wallet owes from late charges (see FinishCall)
// out of its balance not held by calls, as far as that goes, with a
// ledger charge: a credit is where a debt ends.
func payDebt(w *wtx, accountID string, now time.Time) error {
	pay, err := w.queryInt(qPayableDebt, accountID)
	if err != nil || pay <= 0 {
		return err
	}
	balance, err := w.queryInt(qPayDebt, pay, pay, now, accountID, pay, pay)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // changed meanwhile: the next credit pays it
	}
	if err != nil {
		return err
	}
	// Charged with no request: the roll-up counts it under no key and no
	// model, so that its spend stays the ledger's.
	w.addUsage(usageKey{account: accountID, hour: usageHour(now)}, usageSum{UsageTotals: UsageTotals{SpendMicros: pay}})
	return w.later(qInsertLedger, w.ids.newID("led"), accountID, LedgerCharge, -pay, balance, nil, nil,
		"Outstanding late charges of calls whose hold had expired", now)
}

// LedgerInvariant checks, for one account, that the wallet's balance is
// the sum of its ledger, that held is the sum of its open holds, and that
// held is never negative. It returns nil when all hold.
func (s *Store) LedgerInvariant(ctx context.Context, accountID string) error {
	w, err := s.walletW(ctx, accountID)
	if err != nil {
		return err
	}
	var sums struct{ Ledger, Held int64 }
	db := s.db.w.WithContext(ctx)
	if err := db.Raw(`SELECT COALESCE(SUM(amount_micros), 0) FROM ledger_entries WHERE account_id = ?`, accountID).
		Scan(&sums.Ledger).Error; err != nil {
		return err
	}
	if err := db.Raw(`SELECT COALESCE(SUM(hold_micros), 0) FROM requests WHERE account_id = ? AND hold_status = 'open'`, accountID).
		Scan(&sums.Held).Error; err != nil {
		return err
	}
	var errs []error
	if w.BalanceMicros != sums.Ledger {
		errs = append(errs, fmt.Errorf("balance %d != sum of ledger %d", w.BalanceMicros, sums.Ledger))
	}
	if w.HeldMicros != sums.Held {
		errs = append(errs, fmt.Errorf("held %d != sum of open holds %d", w.HeldMicros, sums.Held))
	}
	if w.HeldMicros < 0 {
		errs = append(errs, fmt.Errorf("held %d < 0", w.HeldMicros))
	}
	return errors.Join(errs...)
}

// walletW reads a wallet through the writer, to see the latest commit.
func (s *Store) walletW(ctx context.Context, accountID string) (*Wallet, error) {
	var w Wallet
	err := s.db.w.WithContext(ctx).Where("account_id = ?", accountID).Take(&w).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	return &w, err
}

// LedgerPage returns up to limit entries of an account, newest first,
// older than the entry id before ("" for the first page).
func (s *Store) LedgerPage(ctx context.Context, accountID, before string, limit int) ([]LedgerEntry, error) {
	q := s.db.r.WithContext(ctx).Where("account_id = ?", accountID)
	if before != "" {
		q = q.Where("id < ?", before)
	}
	var out []LedgerEntry
	err := q.Order("id DESC").Limit(limit).Find(&out).Error
	return out, err
}

// LooksLikeLedgerID reports whether s has the shape of a ledger entry's
// id, as the Billing page's cursor must.
func LooksLikeLedgerID(s string) bool { return looksLikeID("led_", s) }
