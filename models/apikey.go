package models

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"math/big"
	"net/netip"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Key statuses. Revoked is final.
const (
	KeyActive   = "active"
	KeyDisabled = "disabled"
	KeyRevoked  = "revoked"
)

// Key defaults and bounds.
const (
	KeySecretPrefix  = "sk-tt-"
	DefaultKeyRPM    = 60
	MaxKeyNameLen    = 100
	keySecretBytes   = 32
	keySecretChars   = 43 // base62 digits of 32 bytes
	maxKeySecretLen  = 128
	keyTouchInterval = time.Minute
)

// APIKey is a key customers call the gateway with. Only the SHA-256 of its
// secret is kept; Prefix and Last4 let people recognise it.
type APIKey struct {
	ID                 string
	AccountID          string
	Name               string
	SecretHash         string
	Prefix             string // "sk-tt-" and the secret's first four characters
	Last4              string `gorm:"column:last4"`
	Status             string
	Models             string `gorm:"column:models"`      // comma-separated model ids; "" = all models
	AllowedIPs         string `gorm:"column:allowed_ips"` // newline-separated CIDRs; "" = any source
	MonthlyLimitMicros *int64
	RPM                int `gorm:"column:rpm"`
	ExpiresAt          *time.Time
	CreatedAt          time.Time
	LastUsedAt         *time.Time
	CreateNonce        *string `gorm:"column:create_nonce"`
}

// TableName keeps keys in the "api_keys" table.
func (APIKey) TableName() string { return "api_keys" }

// Display is how the console shows a key: "sk-tt-abcd…wxyz".
func (k *APIKey) Display() string { return k.Prefix + "…" + k.Last4 }

// ModelList returns the models the key may call, or nil for all models.
func (k *APIKey) ModelList() []string {
	if k.Models == "" {
		return nil
	}
	return strings.Split(k.Models, ",")
}

// AllowsModel reports whether the key's scope includes model id.
func (k *APIKey) AllowsModel(id string) bool {
	list := k.ModelList()
	return list == nil || slices.Contains(list, id)
}

// IPPrefixes returns the key's allowed source ranges, or nil for any.
func (k *APIKey) IPPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, line := range strings.Split(k.AllowedIPs, "\n") {
		if p, err := netip.ParsePrefix(strings.TrimSpace(line)); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// AllowsIP reports whether a call from ip may use the key. An empty list
// allows any source; an IPv4-mapped IPv6 address counts as its IPv4 form.
func (k *APIKey) AllowsIP(ip netip.Addr) bool {
	if k.AllowedIPs == "" {
		return true
	}
	ip = ip.Unmap().WithZone("")
	for _, p := range k.IPPrefixes() {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Expired reports whether the key's expiry has passed at now.
func (k *APIKey) Expired(now time.Time) bool {
	return k.ExpiresAt != nil && !now.Before(*k.ExpiresAt)
}

// State is the status people see: active, disabled, revoked or expired.
func (k *APIKey) State(now time.Time) string {
	if k.Status == KeyActive && k.Expired(now) {
		return "expired"
	}
	return k.Status
}

// Usable returns nil when the key may call the API at now, or an
// EUNAUTHORIZED error that says why not.
func (k *APIKey) Usable(now time.Time) error {
	switch {
	case k.Status == KeyRevoked:
		return Errorf(EUNAUTHORIZED, "This API key (%s) has been revoked. Create a new key in the console.", k.Display())
	case k.Status != KeyActive:
		return Errorf(EUNAUTHORIZED, "This API key (%s) is disabled. Enable it in the console, or use another key.", k.Display())
	case k.Expired(now):
		return Errorf(EUNAUTHORIZED, "This API key (%s) expired on %s. Create a new key in the console.",
			k.Display(), k.ExpiresAt.UTC().Format("2 Jan 2006 15:04 UTC"))
	}
	return nil
}

// newKeySecret returns a fresh secret: "sk-tt-" and 32 random bytes in
// base62, padded to a fixed length so every key looks the same.
func newKeySecret() (string, error) {
	b := make([]byte, keySecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	digits := new(big.Int).SetBytes(b).Text(62)
	return KeySecretPrefix + strings.Repeat("0", keySecretChars-len(digits)) + digits, nil
}

// hashKeySecret is the stored form of a secret.
func hashKeySecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// APIKeyBySecret returns the key a caller presented, whatever its status:
// the gateway decides what a disabled, revoked or expired key gets. An
// unknown secret is ErrNotFound.
func (s *Store) APIKeyBySecret(ctx context.Context, secret string) (*APIKey, error) {
	if !strings.HasPrefix(secret, KeySecretPrefix) || len(secret) > maxKeySecretLen {
		return nil, ErrNotFound
	}
	hash := hashKeySecret(secret)
	if k, ok := s.keys.get(hash, keyCacheTTL); ok {
		c := *k // callers may change their copy
		return &c, nil
	}
	gen := s.keys.gen.Load()
	var k APIKey
	err := s.db.r.WithContext(ctx).Where("secret_hash = ?", hash).Take(&k).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	// The index found the row; compare again in constant time so the
	// answer never depends on how much of the hash matched.
	if subtle.ConstantTimeCompare([]byte(hash), []byte(k.SecretHash)) != 1 {
		return nil, ErrNotFound
	}
	c := k
	s.keys.put(hash, &c, gen)
	return &k, nil
}

// TouchAPIKey records that a key was used at at. The gateway calls it on
// every request, so it reads first and writes at most about once a minute
// per key; the guarded update keeps racing instances to one write.
func (s *Store) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	at = at.UTC()
	var last []sql.NullTime
	err := s.db.r.WithContext(ctx).Model(&APIKey{}).Where("id = ?", id).Limit(1).Pluck("last_used_at", &last).Error
	if err != nil || len(last) == 0 {
		return err
	}
	if last[0].Valid && at.Sub(last[0].Time) < keyTouchInterval {
		return nil
	}
	res := s.db.w.WithContext(ctx).Model(&APIKey{}).
		Where("id = ? AND (last_used_at IS NULL OR last_used_at < ?)", id, at.Add(-keyTouchInterval)).
		Update("last_used_at", at)
	if res.RowsAffected > 0 {
		s.keys.drop()
	}
	return res.Error
}

// APIKeysOf returns every key of an account, newest first.
func (s *Store) APIKeysOf(ctx context.Context, accountID string) ([]APIKey, error) {
	var out []APIKey
	err := s.db.r.WithContext(ctx).Where("account_id = ?", accountID).Order("id DESC").Find(&out).Error
	return out, err
}

// APIKeyOf returns one key of an account; another account's key is
// ErrNotFound, exactly like a missing one.
func (s *Store) APIKeyOf(ctx context.Context, accountID, id string) (*APIKey, error) {
	var k APIKey
	err := s.db.r.WithContext(ctx).Where("id = ? AND account_id = ?", id, accountID).Take(&k).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &k, nil
}
