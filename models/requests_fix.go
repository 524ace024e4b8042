package models

import (
	"context"
	"net/netip"
	"slices"

	"gorm.io/gorm"
)

// The Requests page fixes the cause of a rejected call in one step. Each
// fix below changes exactly one setting of one key, inside a transaction
// that locks the key's row, so two fixes at once cannot undo each other
// the way a whole-form update built from an earlier read could. Each
// records its audit entry in that transaction, and reports false, having
// changed nothing, when the key already allows what was asked.

// AllowIPOnKey adds ip, as a single address, to a key's IP allow list.
func (s *Store) AllowIPOnKey(ctx context.Context, accountID, keyID string, by Actor, ip netip.Addr) (*APIKey, bool, error) {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return nil, false, Errorf(EINVALID, "This request has no valid source IP to allow.")
	}
	return s.fixKey(ctx, accountID, keyID, by, func(k *APIKey) (string, string, string, any, error) {
		if k.AllowsIP(ip) {
			return "", "", "", nil, nil
		}
		list := append(k.IPPrefixes(), netip.PrefixFrom(ip, ip.BitLen()))
		if len(list) > MaxAllowedIPs {
			return "", "", "", nil, Errorf(EINVALID, "This key already allows %d addresses or ranges, the most a key can have. Edit the key to use wider CIDR ranges.", MaxAllowedIPs)
		}
		next := FormatIPAllowList(list)
		was := describeIPs(k.AllowedIPs)
		k.AllowedIPs = next
		return "allowed_ips", was, describeIPs(next), next, nil
	})
}

// AddModelToKey adds a catalogue model to a key's scope.
func (s *Store) AddModelToKey(ctx context.Context, accountID, keyID string, by Actor, model string) (*APIKey, bool, error) {
	if _, err := s.ModelByID(ctx, model); err != nil {
		if ErrorCode(err) == ENOTFOUND {
			return nil, false, Errorf(EINVALID, "%q is not a model of the catalogue.", model)
		}
		return nil, false, err
	}
	return s.fixKey(ctx, accountID, keyID, by, func(k *APIKey) (string, string, string, any, error) {
		if k.AllowsModel(model) {
			return "", "", "", nil, nil
		}
		list := append(k.ModelList(), model)
		slices.Sort(list)
		next := ""
		for i, m := range list {
			if i > 0 {
				next += ","
			}
			next += m
		}
		was := describeModels(k.Models)
		k.Models = next
		return "models", was, describeModels(next), next, nil
	})
}

// RaiseKeyMonthlyLimit sets a key's monthly limit to limit, which must be
// above the current one: this step only ever raises it.
func (s *Store) RaiseKeyMonthlyLimit(ctx context.Context, accountID, keyID string, by Actor, limit int64) (*APIKey, bool, error) {
	return s.fixKey(ctx, accountID, keyID, by, func(k *APIKey) (string, string, string, any, error) {
		if k.MonthlyLimitMicros == nil {
			return "", "", "", nil, nil
		}
		if limit <= *k.MonthlyLimitMicros {
			return "", "", "", nil, &Error{Code: EINVALID, Message: "Please correct the highlighted fields.",
				Fields: map[string]string{"monthly_limit_usd": "Enter more than the current limit of " + FormatUSD(*k.MonthlyLimitMicros) + "."}}
		}
		was := describeLimit(k.MonthlyLimitMicros)
		k.MonthlyLimitMicros = &limit
		return "monthly_limit", was, describeLimit(&limit), limit, nil
	})
}

// fixKey runs change on a locked key of the account. change returns the
// column's name in events, the values before and after as events show
// them, and the value to store; an empty field means nothing to change.
func (s *Store) fixKey(ctx context.Context, accountID, keyID string, by Actor,
	change func(*APIKey) (field, was, is string, value any, err error)) (*APIKey, bool, error) {
	defer s.keys.drop() // after the commit: the retried call sees the fix
	var k APIKey
	changed := false
	err := s.db.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.lockKey(tx, accountID, keyID, &k); err != nil {
			return err
		}
		if k.Status == KeyRevoked {
			return Errorf(ECONFLICT, "This key is revoked; a revoked key cannot be changed. Create a new key instead.")
		}
		field, was, is, value, err := change(&k)
		if err != nil || field == "" {
			return err
		}
		column := map[string]string{"allowed_ips": "allowed_ips", "models": "models", "monthly_limit": "monthly_limit_micros"}[field]
		if err := tx.Model(&APIKey{}).Where("id = ?", k.ID).Update(column, value).Error; err != nil {
			return err
		}
		changed = true
		action := map[string]string{"allowed_ips": AuditFixAllowIP, "models": AuditFixAddModel, "monthly_limit": AuditFixRaiseLimit}[field]
		return s.auditTx(tx, by, keyEntry(&k, action, field, was, is))
	})
	if err != nil {
		return nil, false, err
	}
	return &k, changed, nil
}
