package models

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"time"

	"gorm.io/gorm"
)

// What a link sent by mail does, and how long it works.
const (
	TokenReset  = "reset"  // set a new password
	TokenVerify = "verify" // confirm the email address

	ResetLinkTTL  = 30 * time.Minute
	VerifyLinkTTL = 7 * 24 * time.Hour
)

// UserToken is a single-use link sent to a user's address. The mail holds
// the token; the table only its SHA-256.
type UserToken struct {
	TokenHash string `gorm:"primaryKey"`
	Purpose   string
	UserID    string
	Email     string // the address the link was sent to
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// ErrLinkInvalid answers a link that is unknown, used, expired, or sent to
// an address the user no longer has: all look the same to its visitor.
var ErrLinkInvalid = &Error{Code: ENOTFOUND, Message: "This link is no longer valid."}

// NewUserToken makes a link token for purpose, valid for ttl, and returns
// the token to put in the mail.
func (s *Store) NewUserToken(ctx context.Context, purpose string, u *User, ttl time.Duration) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := base64.RawURLEncoding.EncodeToString(b)
	now := time.Now().UTC()
	err := s.db.w.WithContext(ctx).Create(&UserToken{TokenHash: HashToken(token), Purpose: purpose,
		UserID: u.ID, Email: u.Email, CreatedAt: now, ExpiresAt: now.Add(ttl)}).Error
	return token, err
}

// tokenUser returns the user a token of purpose belongs to, and the
// token's row, whatever its state; ErrLinkInvalid when it is unknown or
// its user no longer has the address it was sent to.
func (s *Store) tokenUser(ctx context.Context, purpose, token string) (*User, *UserToken, error) {
	if token == "" || len(token) > 100 {
		return nil, nil, ErrLinkInvalid
	}
	var t UserToken
	err := s.db.r.WithContext(ctx).Where("token_hash = ? AND purpose = ?", HashToken(token), purpose).Take(&t).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil, ErrLinkInvalid
	}
	if err != nil {
		return nil, nil, err
	}
	u, err := s.UserByID(ctx, t.UserID)
	if ErrorCode(err) == ENOTFOUND || (err == nil && u.Email != t.Email) {
		return nil, nil, ErrLinkInvalid
	}
	return u, &t, err
}

// usable reports whether a token may still be used at now.
func (t *UserToken) usable(now time.Time) bool { return t.UsedAt == nil && now.Before(t.ExpiresAt) }

// useToken marks a token used in tx, if it still can be: a link clicked
// twice at once works once.
func useToken(tx *gorm.DB, purpose, token string, now time.Time) error {
	res := tx.Model(&UserToken{}).
		Where("token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?", HashToken(token), purpose, now).
		Update("used_at", now)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected != 1 {
		return ErrLinkInvalid
	}
	return nil
}

// ResetLinkUser returns the user of a password reset link that still works.
func (s *Store) ResetLinkUser(ctx context.Context, token string) (*User, error) {
	u, t, err := s.tokenUser(ctx, TokenReset, token)
	if err != nil {
		return nil, err
	}
	if !t.usable(time.Now().UTC()) {
		return nil, ErrLinkInvalid
	}
	return u, nil
}

// voidResetLinks marks every reset link of a user not used yet as used:
// the password they were asked for to replace is gone.
func voidResetLinks(tx *gorm.DB, userID string, now time.Time) error {
	return tx.Model(&UserToken{}).Where("user_id = ? AND purpose = ? AND used_at IS NULL", userID, TokenReset).
		Update("used_at", now).Error
}

// ResetPassword sets a new password through a reset link. In one
// transaction it uses the link (and every other reset link of the user),
// ends every session of the user, and counts the address as confirmed:
// the link reached it. A password that does not do is a field error and
// leaves the link usable.
func (s *Store) ResetPassword(ctx context.Context, token, password string) (*User, error) {
	u, err := s.ResetLinkUser(ctx, token)
	if err != nil {
		return nil, err
	}
	if msg := passwordProblem(password); msg != "" {
		return nil, FieldErrors{"password": msg}.Err()
	}
	hash, err := s.hashes.hash(ctx, password)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	err = s.db.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := useToken(tx, TokenReset, token, now); err != nil {
			return err
		}
		if err := voidResetLinks(tx, u.ID, now); err != nil {
			return err
		}
		if err := tx.Model(&User{}).Where("id = ?", u.ID).Updates(map[string]any{
			"password_hash": hash, "password_changed_at": now,
			"email_verified_at": gorm.Expr("COALESCE(email_verified_at, ?)", now),
		}).Error; err != nil {
			return err
		}
		return tx.Where("user_id = ?", u.ID).Delete(&Session{}).Error
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// VerifyEmail confirms the address a verification link was sent to, and
// uses the link. A link whose address is confirmed already (clicked twice,
// or an older mail) answers with its user too; any other link that no
// longer works is ErrLinkInvalid.
func (s *Store) VerifyEmail(ctx context.Context, token string) (*User, error) {
	u, t, err := s.tokenUser(ctx, TokenVerify, token)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	if !t.usable(now) {
		if u.EmailVerifiedAt != nil {
			return u, nil
		}
		return nil, ErrLinkInvalid
	}
	err = s.db.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := useToken(tx, TokenVerify, token, now); err != nil {
			return err
		}
		return tx.Model(&User{}).Where("id = ? AND email = ? AND email_verified_at IS NULL", u.ID, t.Email).
			Update("email_verified_at", now).Error
	})
	if errors.Is(err, ErrLinkInvalid) { // the same link, clicked twice at once
		if again, err := s.UserByID(ctx, u.ID); err == nil && again.EmailVerifiedAt != nil {
			return again, nil
		}
	}
	if err != nil {
		return nil, err
	}
	if u.EmailVerifiedAt == nil {
		u.EmailVerifiedAt = &now
	}
	return u, nil
}

// MarkEmailVerified counts a user's address as confirmed without a link:
// for accounts an operator makes.
func (s *Store) MarkEmailVerified(ctx context.Context, userID string) error {
	return s.db.w.WithContext(ctx).Model(&User{}).Where("id = ? AND email_verified_at IS NULL", userID).
		Update("email_verified_at", time.Now().UTC()).Error
}

// TokenKeep is how long a link's row is kept after the link expired: a
// confirmation link clicked again in that time still says the address is
// confirmed; after it, every old link reads as unknown, which its visitor
// is told the same way as expired.
const TokenKeep = 30 * 24 * time.Hour

// PurgeUserTokens deletes the rows of links that expired before before,
// used or not, and returns how many it deleted: without it the table keeps
// one row for every sign-up and reset request ever made.
func (s *Store) PurgeUserTokens(ctx context.Context, before time.Time) (int64, error) {
	res := s.db.w.WithContext(ctx).Where("expires_at < ?", before.UTC()).Delete(&UserToken{})
	return res.RowsAffected, res.Error
}
