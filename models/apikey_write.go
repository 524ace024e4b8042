package models

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// KeyAlreadyCreatedError says a create form was submitted a second time
// (a reload): the key exists, and its secret was shown the first time.
type KeyAlreadyCreatedError struct{ KeyID string }

func (e *KeyAlreadyCreatedError) Error() string {
	return "This key was already created; its secret was shown once, when it was created."
}

// maxNonceLen bounds the form token that makes creation idempotent.
const maxNonceLen = 64

// CreateAPIKey makes a key for an account from what a person typed and
// returns it with its secret, which is never stored and cannot be shown
// again. Invalid input is an EINVALID error with field messages and
// writes nothing.
func (s *Store) CreateAPIKey(ctx context.Context, accountID string, by Actor, in KeyInput) (*APIKey, string, error) {
	acct, err := s.AccountByID(ctx, accountID)
	if err != nil {
		return nil, "", err
	}
	catalogue, err := s.Models(ctx)
	if err != nil {
		return nil, "", err
	}
	now := time.Now().UTC()
	set, err := parseKeyInput(in, keyRules{catalogue: catalogue, maxRPM: acct.MaxRPM, operator: by.Operator, now: now})
	if err != nil {
		return nil, "", err
	}
	if len(in.Nonce) > maxNonceLen {
		in.Nonce = ""
	}
	if in.Nonce != "" {
		id, err := s.keyIDByNonce(ctx, accountID, in.Nonce)
		if err != nil {
			return nil, "", err
		}
		if id != "" {
			return nil, "", &KeyAlreadyCreatedError{KeyID: id}
		}
	}

	secret, err := newKeySecret()
	if err != nil {
		return nil, "", err
	}
	body := secret[len(KeySecretPrefix):]
	k := &APIKey{
		ID: s.NewID("key"), AccountID: accountID, Name: set.Name, SecretHash: hashKeySecret(secret),
		Prefix: KeySecretPrefix + body[:4], Last4: body[len(body)-4:], Status: KeyActive,
		Models: set.Models, AllowedIPs: set.AllowedIPs, MonthlyLimitMicros: set.Limit, RPM: set.RPM,
		ExpiresAt: set.ExpiresAt, CreatedAt: now, KeepBodies: set.KeepBodies, KeepBodiesDays: set.KeepDays,
	}
	if in.Nonce != "" {
		k.CreateNonce = &in.Nonce
	}
	err = s.db.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(k).Error; err != nil {
			return err
		}
		if err := s.auditTx(tx, by, keyEntry(k, AuditKeyCreated, "", "", k.Display())); err != nil {
			return err
		}
		if !k.KeepBodies {
			return nil
		}
		return s.auditTx(tx, by, keyEntry(k, AuditKeyKeepBodies, "keep_bodies", describeBodies(false, 0), describeBodies(true, k.KeepBodiesDays)))
	})
	if err != nil && in.Nonce != "" && isUniqueViolation(err) {
		// The same form, submitted twice at once: the other one won.
		if id, lerr := s.keyIDByNonce(ctx, accountID, in.Nonce); lerr == nil && id != "" {
			return nil, "", &KeyAlreadyCreatedError{KeyID: id}
		}
	}
	if err != nil {
		return nil, "", err
	}
	return k, secret, nil
}

func (s *Store) keyIDByNonce(ctx context.Context, accountID, nonce string) (string, error) {
	var ids []string
	err := s.db.w.WithContext(ctx).Model(&APIKey{}).Where("account_id = ? AND create_nonce = ?", accountID, nonce).
		Limit(1).Pluck("id", &ids).Error
	if err != nil || len(ids) == 0 {
		return "", err
	}
	return ids[0], nil
}

// UpdateAPIKey changes every setting of a key from what a person typed,
// records one audit entry per changed field, and returns the key and how many
// fields changed. Another account's key is ErrNotFound whatever the
// input; a revoked key cannot change.
func (s *Store) UpdateAPIKey(ctx context.Context, accountID, id string, by Actor, in KeyInput) (*APIKey, int, error) {
	defer s.keys.drop() // after the commit: the gateway sees the change on its next call
	var k APIKey
	changed := 0
	now := time.Now().UTC()
	err := s.db.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.lockKey(tx, accountID, id, &k); err != nil {
			return err
		}
		if k.Status == KeyRevoked {
			return Errorf(ECONFLICT, "This key is revoked; a revoked key cannot be changed. Create a new key instead.")
		}
		var acct Account
		if err := tx.Where("id = ?", accountID).Take(&acct).Error; err != nil {
			return err
		}
		var catalogue []CatalogModel
		if err := tx.Order("sort, id").Find(&catalogue).Error; err != nil {
			return err
		}
		set, err := parseKeyInput(in, keyRules{catalogue: catalogue, maxRPM: acct.MaxRPM, operator: by.Operator, now: now, current: &k})
		if err != nil {
			return err
		}
		var entries []AuditEntry
		note := func(field, was, is string) {
			if was != is {
				action := AuditKeyUpdated
				if field == "keep_bodies" {
					action = AuditKeyKeepBodies
				}
				entries = append(entries, keyEntry(&k, action, field, was, is))
			}
		}
		note("name", k.Name, set.Name)
		note("models", describeModels(k.Models), describeModels(set.Models))
		note("allowed_ips", describeIPs(k.AllowedIPs), describeIPs(set.AllowedIPs))
		note("monthly_limit", describeLimit(k.MonthlyLimitMicros), describeLimit(set.Limit))
		note("rpm", strconv.Itoa(k.RPM), strconv.Itoa(set.RPM))
		note("expires_at", describeExpiry(k.ExpiresAt), describeExpiry(set.ExpiresAt))
		note("keep_bodies", describeBodies(k.KeepBodies, k.KeepBodiesDays), describeBodies(set.KeepBodies, set.KeepDays))
		if changed = len(entries); changed == 0 {
			return nil
		}
		k.Name, k.Models, k.AllowedIPs = set.Name, set.Models, set.AllowedIPs
		k.MonthlyLimitMicros, k.RPM, k.ExpiresAt = set.Limit, set.RPM, set.ExpiresAt
		k.KeepBodies, k.KeepBodiesDays = set.KeepBodies, set.KeepDays
		// A map writes NULLs too, where a struct update would skip them.
		err = tx.Model(&APIKey{}).Where("id = ?", k.ID).Updates(map[string]any{
			"name": k.Name, "models": k.Models, "allowed_ips": k.AllowedIPs,
			"monthly_limit_micros": k.MonthlyLimitMicros, "rpm": k.RPM, "expires_at": k.ExpiresAt,
			"keep_bodies": k.KeepBodies, "keep_bodies_days": k.KeepBodiesDays,
		}).Error
		if err != nil {
			return err
		}
		for _, e := range entries {
			e.TargetLabel = k.Name // as it is now
			if err := s.auditTx(tx, by, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return &k, changed, nil
}

// Key status changes the console offers.
const (
	KeyActionDisable = "disable"
	KeyActionEnable  = "enable"
	KeyActionRevoke  = "revoke"
)

// SetAPIKeyStatus disables, enables or revokes a key and records the
// change. A change the key's status does not allow (enabling a revoked
// key) is ECONFLICT.
func (s *Store) SetAPIKeyStatus(ctx context.Context, accountID, id string, by Actor, action string) (*APIKey, error) {
	defer s.keys.drop() // after the commit: the gateway sees the change on its next call
	var k APIKey
	err := s.db.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.lockKey(tx, accountID, id, &k); err != nil {
			return err
		}
		to, err := nextKeyStatus(k.Status, action)
		if err != nil {
			return err
		}
		res := tx.Model(&APIKey{}).Where("id = ? AND status = ?", k.ID, k.Status).Update("status", to)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return Errorf(ECONFLICT, "This key changed meanwhile. Reload the page and try again.")
		}
		action := map[string]string{KeyDisabled: AuditKeyDisabled, KeyActive: AuditKeyEnabled, KeyRevoked: AuditKeyRevoked}[to]
		e := keyEntry(&k, action, "status", k.Status, to)
		k.Status = to
		return s.auditTx(tx, by, e)
	})
	if err != nil {
		return nil, err
	}
	if k.Status == KeyRevoked {
		// A revoked key keeps nothing: no body is written for it from
		// now on (SaveBodies checks), and those kept go now, in batches.
		if _, err := s.DeleteKeyBodies(context.WithoutCancel(ctx), accountID, k.ID); err != nil {
			return &k, fmt.Errorf("key revoked, but its kept bodies were not all deleted: %w", err)
		}
	}
	return &k, nil
}

func nextKeyStatus(from, action string) (string, error) {
	switch {
	case from == KeyRevoked:
		return "", Errorf(ECONFLICT, "This key is revoked; revoking is final. Create a new key instead.")
	case action == KeyActionDisable && from == KeyActive:
		return KeyDisabled, nil
	case action == KeyActionEnable && from == KeyDisabled:
		return KeyActive, nil
	case action == KeyActionRevoke:
		return KeyRevoked, nil
	case action == KeyActionDisable || action == KeyActionEnable:
		return "", Errorf(ECONFLICT, "This key is already %s.", from)
	}
	return "", fmt.Errorf("unknown key action %q", action)
}

// lockKey reads a key of an account inside a transaction, locking its row
// on PostgreSQL (SQLite's writer already holds the whole database).
func (s *Store) lockKey(tx *gorm.DB, accountID, id string, k *APIKey) error {
	q := tx.Where("id = ? AND account_id = ?", id, accountID)
	if s.db.Postgres {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	err := q.Take(k).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return ErrNotFound
	}
	return err
}

// keyEntry is an audit entry about key k: action, and for a setting its
// name and values before and after, as a person reads them.
func keyEntry(k *APIKey, action, field, was, is string) AuditEntry {
	return AuditEntry{AccountID: k.AccountID, Action: action, Target: k.ID, TargetLabel: k.Name, Field: field, Before: was, After: is}
}
