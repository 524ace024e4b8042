package models

import (
	"context"
	"fmt"
	"time"
)

// ReceiptLabel is a receipt number as printed: "000042".
func ReceiptLabel(n int64) string { return fmt.Sprintf("%06d", n) }

// Receipt is a paid payment as its receipt shows it.
type Receipt struct {
	Payment      Payment
	Number       string
	AccountID    string
	AccountName  string
	BillingEmail string
}

// ReceiptOf returns the receipt of an account's paid payment; another
// account's payment, or one not paid, is ErrNotFound.
func (s *Store) ReceiptOf(ctx context.Context, accountID, paymentID string) (*Receipt, error) {
	p, err := s.PaymentOf(ctx, accountID, paymentID)
	if err != nil {
		return nil, err
	}
	if p.Status != PaymentPaid || p.ReceiptNumber == nil {
		return nil, ErrNotFound
	}
	return s.receipt(ctx, p)
}

func (s *Store) receipt(ctx context.Context, p *Payment) (*Receipt, error) {
	a, err := s.AccountByID(ctx, p.AccountID)
	if err != nil {
		return nil, err
	}
	r := &Receipt{Payment: *p, Number: ReceiptLabel(*p.ReceiptNumber), AccountID: a.ID, AccountName: a.Name}
	r.BillingEmail, err = s.BillingEmail(ctx, p.AccountID)
	return r, err
}

// BillingEmail is the address receipts are made out to: the account
// owner's.
func (s *Store) BillingEmail(ctx context.Context, accountID string) (string, error) {
	var out []string
	err := s.db.r.WithContext(ctx).Table("memberships").Joins("JOIN users ON users.id = memberships.user_id").
		Where("memberships.account_id = ? AND memberships.role = ?", accountID, RoleOwner).
		Order("memberships.created_at, users.id").Limit(1).Pluck("users.email", &out).Error
	if err != nil || len(out) == 0 {
		return "", err
	}
	return out[0], nil
}

// BillingEmails returns the addresses billing mail goes to: the account's
// owner and its members with the billing role.
func (s *Store) BillingEmails(ctx context.Context, accountID string) ([]string, error) {
	var out []string
	err := s.db.r.WithContext(ctx).Table("memberships").Joins("JOIN users ON users.id = memberships.user_id").
		Where("memberships.account_id = ? AND memberships.role IN ?", accountID, []string{RoleOwner, RoleBilling}).
		Order("memberships.created_at, users.id").Pluck("users.email", &out).Error
	return out, err
}

// UnmailedReceipts returns receipts whose mail is still to be sent.
func (s *Store) UnmailedReceipts(ctx context.Context, limit int) ([]Receipt, error) {
	var ps []Payment
	if err := s.db.w.WithContext(ctx).Where("receipt_number IS NOT NULL AND receipt_mailed_at IS NULL").
		Order("paid_at").Limit(limit).Find(&ps).Error; err != nil {
		return nil, err
	}
	out := make([]Receipt, 0, len(ps))
	for i := range ps {
		r, err := s.receipt(ctx, &ps[i])
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, nil
}

// ClaimReceiptMail takes the sending of a payment's receipt, once across
// instances; ReleaseReceiptMail gives it back when sending failed.
func (s *Store) ClaimReceiptMail(ctx context.Context, paymentID string) (bool, error) {
	res := s.db.w.WithContext(ctx).Exec(`UPDATE payments SET receipt_mailed_at = ? WHERE id = ? AND receipt_mailed_at IS NULL`,
		time.Now().UTC(), paymentID)
	return res.RowsAffected == 1, res.Error
}

// ReleaseReceiptMail: see ClaimReceiptMail.
func (s *Store) ReleaseReceiptMail(ctx context.Context, paymentID string) error {
	return s.db.w.WithContext(ctx).Exec(`UPDATE payments SET receipt_mailed_at = NULL WHERE id = ?`, paymentID).Error
}
