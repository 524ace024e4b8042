package models

import (
	"context"
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

// Credit changes an account's balance by amount (negative for a debit
// adjustment) and appends the ledger entry, in one transaction.
func (s *Store) Credit(ctx context.Context, accountID string, amount int64, kind, memo string, ref LedgerRef) (*LedgerEntry, error) {
	var e *LedgerEntry
	err := s.db.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		e, err = s.creditTx(tx, accountID, amount, kind, memo, ref)
		return err
	})
	return e, err
}

// creditTx is Credit inside a caller's transaction, so a payment can be
// marked paid and credited atomically.
func (s *Store) creditTx(tx *gorm.DB, accountID string, amount int64, kind, memo string, ref LedgerRef) (*LedgerEntry, error) {
	if len(memo) > MaxMemoLen {
		return nil, &Error{Code: EINVALID, Message: "The memo is too long.", Fields: map[string]string{"memo": "Use at most 500 characters."}}
	}
	if tx.Dialector.Name() == "postgres" {
		// A credit is money received: its commit waits for the disk even
		// where the database runs with synchronous_commit = off, so a
		// payment the provider was told we took is never lost.
		if err := tx.Exec("SET LOCAL synchronous_commit TO ON").Error; err != nil {
			return nil, err
		}
	}
	now := time.Now().UTC()
	var balance int64
	res := tx.Raw(`UPDATE wallets SET balance_micros = balance_micros + ?, updated_at = ?
		WHERE account_id = ? RETURNING balance_micros`, amount, now, accountID).Scan(&balance)
	if res.Error != nil {
		return nil, res.Error
	}
	if res.RowsAffected == 0 {
		return nil, ErrNotFound
	}
	e := &LedgerEntry{
		ID: s.NewID("led"), AccountID: accountID, Kind: kind, AmountMicros: amount,
		BalanceAfterMicros: balance, Memo: memo, CreatedAt: now,
	}
	if ref.RequestID != "" {
		e.RequestID = &ref.RequestID
	}
	if ref.PaymentID != "" {
		e.PaymentID = &ref.PaymentID
	}
	if err := tx.Create(e).Error; err != nil {
		return nil, err
	}
	if amount > 0 {
		if err := s.payDebt(tx, accountID, now); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// payDebt pays what the wallet owes from late charges (see FinishCall)
// out of its balance not held by calls, as far as that goes, with a
// ledger charge: a credit is where a debt ends.
func (s *Store) payDebt(tx *gorm.DB, accountID string, now time.Time) error {
	var w Wallet
	if err := tx.Where("account_id = ?", accountID).Take(&w).Error; err != nil {
		return err
	}
	pay := min(w.DebtMicros, w.BalanceMicros-w.HeldMicros)
	if pay <= 0 {
		return nil
	}
	var balance int64
	res := tx.Raw(`UPDATE wallets SET balance_micros = balance_micros - ?, debt_micros = debt_micros - ?, updated_at = ?
		WHERE account_id = ? AND debt_micros >= ? AND balance_micros - held_micros >= ? RETURNING balance_micros`,
		pay, pay, now, accountID, pay, pay).Scan(&balance)
	if res.Error != nil || res.RowsAffected == 0 {
		return res.Error // changed meanwhile: the next credit pays it
	}
	return tx.Create(&LedgerEntry{
		ID: s.NewID("led"), AccountID: accountID, Kind: LedgerCharge, AmountMicros: -pay, BalanceAfterMicros: balance,
		Memo: "Outstanding late charges of calls whose hold had expired", CreatedAt: now,
	}).Error
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
