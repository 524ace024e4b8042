package models

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"gorm.io/gorm"
)

// Session lifetimes: a session ends after IdleTimeout without a request,
// and after AbsoluteTimeout however active it is.
const (
	SessionIdleTimeout     = 2 * time.Hour
	SessionAbsoluteTimeout = 7 * 24 * time.Hour
	// sessionTouchEvery limits writes: last_seen_at moves at most this often.
	sessionTouchEvery = time.Minute
)

// Session is the server side of a signed-in browser. AccountID is the
// account it works in (the user must be a member there), "" for none.
type Session struct {
	TokenHash  string `gorm:"primaryKey"`
	UserID     string
	AccountID  string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
	IP         string `gorm:"column:ip"`
	UserAgent  string
}

// HashToken returns the stored form of a session token.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CreateSession starts a session for userID, working in accountID, and
// returns its secret token, which only the cookie keeps.
func (s *Store) CreateSession(ctx context.Context, userID, accountID, ip, userAgent string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := hex.EncodeToString(b)
	if len(userAgent) > 512 {
		userAgent = userAgent[:512]
	}
	now := time.Now().UTC()
	err := s.db.w.WithContext(ctx).Create(&Session{
		TokenHash: HashToken(token), UserID: userID, AccountID: accountID, CreatedAt: now, LastSeenAt: now,
		ExpiresAt: now.Add(SessionAbsoluteTimeout), IP: ip, UserAgent: userAgent,
	}).Error
	return token, err
}

// SessionUser returns the user of a live session and marks it seen. An
// unknown, idle or expired token is ENOTFOUND.
func (s *Store) SessionUser(ctx context.Context, token string) (*User, *Session, error) {
	if token == "" {
		return nil, nil, ErrNotFound
	}
	var sess Session
	err := s.db.r.WithContext(ctx).Where("token_hash = ?", HashToken(token)).Take(&sess).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	now := time.Now().UTC()
	if now.After(sess.ExpiresAt) || now.Sub(sess.LastSeenAt) > SessionIdleTimeout {
		_ = s.DeleteSession(ctx, token)
		return nil, nil, ErrNotFound
	}
	u, err := s.UserByID(ctx, sess.UserID)
	if err != nil {
		return nil, nil, err
	}
	if now.Sub(sess.LastSeenAt) > sessionTouchEvery {
		err := s.db.w.WithContext(ctx).Model(&Session{}).Where("token_hash = ?", sess.TokenHash).
			Update("last_seen_at", now).Error
		if err != nil {
			return nil, nil, err
		}
	}
	return u, &sess, nil
}

// SessionsOf returns a user's sessions, newest first: every browser
// signed in as the user, expired ones until they are purged.
func (s *Store) SessionsOf(ctx context.Context, userID string) ([]Session, error) {
	var out []Session
	err := s.db.r.WithContext(ctx).Where("user_id = ?", userID).Order("created_at DESC").Find(&out).Error
	return out, err
}

// DeleteSession ends one session.
func (s *Store) DeleteSession(ctx context.Context, token string) error {
	return s.db.w.WithContext(ctx).Where("token_hash = ?", HashToken(token)).Delete(&Session{}).Error
}

// PurgeSessions removes sessions that can no longer be used.
func (s *Store) PurgeSessions(ctx context.Context) (int64, error) {
	now := time.Now().UTC()
	res := s.db.w.WithContext(ctx).Where("expires_at < ? OR last_seen_at < ?", now, now.Add(-SessionIdleTimeout)).
		Delete(&Session{})
	return res.RowsAffected, res.Error
}
