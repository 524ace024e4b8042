package models

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// MaxLowBalanceMicros bounds the low-balance threshold a person can set.
const MaxLowBalanceMicros int64 = 1_000_000 * MicrosPerUSD

// LowBalanceThreshold returns the available balance below which the
// console warns an account, or nil when the account wants no warning.
func (s *Store) LowBalanceThreshold(ctx context.Context, accountID string) (*int64, error) {
	var v struct{ LowBalanceMicros *int64 }
	res := s.db.r.WithContext(ctx).Raw(`SELECT low_balance_micros FROM accounts WHERE id = ?`, accountID).Scan(&v)
	if res.Error != nil {
		return nil, res.Error
	}
	if res.RowsAffected == 0 {
		return nil, ErrNotFound
	}
	return v.LowBalanceMicros, nil
}

// SetLowBalanceThreshold reads the low_balance_usd field (empty turns the
// warning off) and stores it, with its audit entry when it changes.
func (s *Store) SetLowBalanceThreshold(ctx context.Context, accountID, lowBalanceUSD string, by Actor) (*int64, error) {
	var v *int64
	if lowBalanceUSD != "" {
		m, msg := ParseCents(lowBalanceUSD)
		if msg == "" && m > MaxLowBalanceMicros {
			msg = "Use at most " + FormatUSD(MaxLowBalanceMicros) + "."
		}
		if msg != "" {
			return nil, FieldErrors{"low_balance_usd": msg}.Err()
		}
		v = &m
	}
	err := s.db.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var was struct{ LowBalanceMicros *int64 }
		res := tx.Raw(`SELECT low_balance_micros FROM accounts WHERE id = ?`, accountID).Scan(&was)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		if err := tx.Exec(`UPDATE accounts SET low_balance_micros = ? WHERE id = ?`, v, accountID).Error; err != nil {
			return err
		}
		before, after := describeLowBalance(was.LowBalanceMicros), describeLowBalance(v)
		if before == after {
			return nil
		}
		return s.auditTx(tx, by, AuditEntry{AccountID: accountID, Action: AuditLowBalanceChanged, Field: "low_balance",
			Before: before, After: after})
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// describeLowBalance is a low-balance threshold as the audit log shows it.
func describeLowBalance(m *int64) string {
	if m == nil {
		return "off"
	}
	return "below " + FormatUSD(*m)
}

// IsLowBalance reports whether a wallet's available balance is below the
// account's threshold.
func IsLowBalance(w *Wallet, threshold *int64) bool {
	return w != nil && threshold != nil && w.Available() < *threshold
}

// DaySpend is what an account was charged for API calls on one UTC day.
type DaySpend struct {
	Day    time.Time // midnight UTC
	Micros int64
}

// DailySpend returns the charges of the last days UTC days up to and
// including now's, oldest first, one entry per day (zero when nothing was
// charged).
func (s *Store) DailySpend(ctx context.Context, accountID string, days int, now time.Time) ([]DaySpend, error) {
	today := now.UTC().Truncate(24 * time.Hour)
	from := today.AddDate(0, 0, -(days - 1))
	day := "strftime('%Y-%m-%d', created_at)"
	if s.db.Postgres {
		day = "to_char(created_at, 'YYYY-MM-DD')"
	}
	var rows []struct {
		Day    string
		Micros int64
	}
	err := s.db.r.WithContext(ctx).Raw(`SELECT `+day+` AS day, -SUM(amount_micros) AS micros
		FROM ledger_entries WHERE account_id = ? AND kind = ? AND created_at >= ?
		GROUP BY `+day, accountID, LedgerCharge, from).Scan(&rows).Error
	if err != nil {
		return nil, err
	}
	byDay := make(map[string]int64, len(rows))
	for _, r := range rows {
		byDay[r.Day] = r.Micros
	}
	out := make([]DaySpend, days)
	for i := range out {
		d := from.AddDate(0, 0, i)
		out[i] = DaySpend{Day: d, Micros: byDay[d.Format("2006-01-02")]}
	}
	return out, nil
}

// SpendSince returns what an account was charged for API calls since t.
func (s *Store) SpendSince(ctx context.Context, accountID string, t time.Time) (int64, error) {
	var sum int64
	err := s.db.r.WithContext(ctx).Raw(`SELECT COALESCE(-SUM(amount_micros), 0) FROM ledger_entries
		WHERE account_id = ? AND kind = ? AND created_at >= ?`, accountID, LedgerCharge, t.UTC()).Scan(&sum).Error
	return sum, err
}

// MonthStart is the first instant of t's calendar month, UTC.
func MonthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}
