package models

import (
	"context"
	"errors"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
)

// Account is a customer: it owns users, keys, a wallet and requests.
type Account struct {
	ID        string
	Name      string
	MaxRPM    int `gorm:"column:max_rpm"`
	CreatedAt time.Time
}

// User is a person who signs in to the console. What they may do, and in
// which accounts, their memberships say. AccountID is the account the user
// came in through: the one made at their sign-up, or the one whose
// invitation created them; the admin commands act on it.
type User struct {
	ID                string
	AccountID         string
	Email             string
	PasswordHash      string
	CreatedAt         time.Time
	PasswordChangedAt time.Time
	// EmailVerifiedAt is when the user confirmed their address (by a
	// link sent to it); nil until then.
	EmailVerifiedAt *time.Time
}

// Wallet is an account's prepaid money: available = balance - held.
type Wallet struct {
	AccountID     string `gorm:"primaryKey"`
	BalanceMicros int64
	HeldMicros    int64
	// DebtMicros is what late charges could not take from the balance
	// (see FinishCall); it counts against new holds until a credit pays it.
	DebtMicros int64
	UpdatedAt  time.Time
}

// Available is what new holds may take: the balance less open holds and
// any debt. It is negative only while a debt exceeds the balance left.
func (w Wallet) Available() int64 { return w.BalanceMicros - w.HeldMicros - w.DebtMicros }

// Limits on what people type.
const (
	MinPasswordLen = 10
	MaxPasswordLen = 256
	MaxEmailLen    = 254
)

// NormalizeEmail trims and lower-cases an email address for storage and lookup.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// ValidateSignup checks a sign-up form and returns field messages.
func ValidateSignup(email, password string) error {
	fe := FieldErrors{}
	if msg := EmailProblem(email); msg != "" {
		fe.Add("email", msg)
	}
	if msg := passwordProblem(password); msg != "" {
		fe.Add("password", msg)
	}
	return fe.Err()
}

// EmailProblem says what is wrong with an email address as typed, or "".
func EmailProblem(email string) string {
	email = NormalizeEmail(email)
	if email == "" {
		return "Enter your email address."
	}
	return addressProblem(email)
}

// addressProblem says what is wrong with a normalized, non-empty email
// address, or "".
func addressProblem(email string) string {
	if len(email) > MaxEmailLen {
		return "An email address can be at most 254 characters."
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || !strings.Contains(email[strings.LastIndex(email, "@")+1:], ".") {
		return "Enter a valid email address, like you@example.com."
	}
	return ""
}

func passwordProblem(password string) string {
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinPasswordLen:
		return "Use at least 10 characters."
	case len(password) > MaxPasswordLen:
		return "Use at most 256 characters."
	}
	return ""
}

// CreateAccount makes an account, its owner user and an empty wallet in one
// transaction, as a sign-up with no console request behind it (tests,
// tools). A duplicate email is a field error and writes nothing.
func (s *Store) CreateAccount(ctx context.Context, email, password string) (*User, error) {
	return s.CreateAccountBy(ctx, email, password, Actor{})
}

// CreateAccountBy is CreateAccount with its audit entry's actor: the admin
// CLI, or, with no name, the person signing up, who is its new owner.
func (s *Store) CreateAccountBy(ctx context.Context, email, password string, by Actor) (*User, error) {
	if err := ValidateSignup(email, password); err != nil {
		return nil, err
	}
	email = NormalizeEmail(email)
	// A taken email is answered before the hash: it costs a read, not 19 MiB.
	var taken int64
	if err := s.db.r.WithContext(ctx).Model(&User{}).Where("email = ?", email).Count(&taken).Error; err != nil {
		return nil, err
	}
	if taken > 0 {
		return nil, duplicateEmail()
	}
	hash, err := s.hashes.hash(ctx, password)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	acct := Account{ID: s.NewID("acct"), Name: email, MaxRPM: 600, CreatedAt: now}
	user := User{ID: s.NewID("user"), AccountID: acct.ID, Email: email, PasswordHash: hash,
		CreatedAt: now, PasswordChangedAt: now}
	err = s.db.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&User{}).Where("email = ?", email).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return duplicateEmail()
		}
		if err := tx.Create(&acct).Error; err != nil {
			return err
		}
		if err := tx.Create(&user).Error; err != nil {
			if isUniqueViolation(err) {
				return duplicateEmail()
			}
			return err
		}
		if err := tx.Create(&Membership{AccountID: acct.ID, UserID: user.ID, Role: RoleOwner, CreatedAt: now}).Error; err != nil {
			return err
		}
		if err := tx.Create(&Wallet{AccountID: acct.ID, UpdatedAt: now}).Error; err != nil {
			return err
		}
		if by.Name == "" {
			by.UserID, by.Name = user.ID, user.Email
		}
		return s.auditTx(tx, by, AuditEntry{AccountID: acct.ID, Action: AuditAccountCreated, Target: user.ID, TargetLabel: email})
	})
	if err != nil {
		return nil, err
	}
	return &user, nil
}

func duplicateEmail() error {
	return &Error{Code: ECONFLICT, Message: "That email is already registered.",
		Fields: map[string]string{"email": "An account with this email already exists. Log in instead."}}
}

func isUniqueViolation(err error) bool {
	msg := err.Error()
	return errors.Is(err, gorm.ErrDuplicatedKey) ||
		strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "SQLSTATE 23505")
}

// ErrBadCredentials is the one answer for a wrong email or a wrong password.
var ErrBadCredentials = &Error{Code: EUNAUTHORIZED, Message: "Incorrect email or password."}

// Authenticate returns the user with this email and password. Every
// attempt costs one hash, whatever the email and password, so the time of
// the answer says nothing about either.
func (s *Store) Authenticate(ctx context.Context, email, password string) (*User, error) {
	var u User
	err := s.db.r.WithContext(ctx).Where("email = ?", NormalizeEmail(email)).Take(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		u.PasswordHash = dummyHash // checked, and never matches
	} else if err != nil {
		return nil, err
	}
	ok, err := s.hashes.check(ctx, u.PasswordHash, password)
	if err != nil {
		return nil, err
	}
	if !ok || u.ID == "" {
		return nil, ErrBadCredentials
	}
	return &u, nil
}

// UserByID returns one user.
func (s *Store) UserByID(ctx context.Context, id string) (*User, error) {
	var u User
	err := s.db.r.WithContext(ctx).Where("id = ?", id).Take(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	return &u, err
}

// UserByEmail returns the user with this email.
func (s *Store) UserByEmail(ctx context.Context, email string) (*User, error) {
	var u User
	err := s.db.r.WithContext(ctx).Where("email = ?", NormalizeEmail(email)).Take(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, Errorf(ENOTFOUND, "No user with email %s.", NormalizeEmail(email))
	}
	return &u, err
}

// AccountByID returns one account.
func (s *Store) AccountByID(ctx context.Context, id string) (*Account, error) {
	var a Account
	err := s.db.r.WithContext(ctx).Where("id = ?", id).Take(&a).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	return &a, err
}

// WalletOf returns an account's wallet.
func (s *Store) WalletOf(ctx context.Context, accountID string) (*Wallet, error) {
	var w Wallet
	err := s.db.r.WithContext(ctx).Where("account_id = ?", accountID).Take(&w).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	return &w, err
}

// ChangePassword sets a new password after checking the current one, and
// in the same transaction ends every other session of the user, voids the
// reset links mailed before (one of them could take the account back from
// the new password) and records the change.
func (s *Store) ChangePassword(ctx context.Context, userID, current, next, keepSessionHash string, by Actor) error {
	u, err := s.UserByID(ctx, userID)
	if err != nil {
		return err
	}
	fe := FieldErrors{}
	ok, err := s.hashes.check(ctx, u.PasswordHash, current)
	if err != nil {
		return err
	}
	if !ok {
		fe.Add("current_password", "That is not your current password.")
	}
	if msg := passwordProblem(next); msg != "" {
		fe.Add("new_password", msg)
	}
	if err := fe.Err(); err != nil {
		return err
	}
	hash, err := s.hashes.hash(ctx, next)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	return s.db.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(&User{}).Where("id = ?", userID).Updates(map[string]any{
			"password_hash": hash, "password_changed_at": now,
		}).Error; err != nil {
			return err
		}
		if err := tx.Where("user_id = ? AND token_hash <> ?", userID, keepSessionHash).Delete(&Session{}).Error; err != nil {
			return err
		}
		if err := voidResetLinks(tx, userID, now); err != nil {
			return err
		}
		return s.auditEveryAccountOf(tx, by, u, AuditPasswordChanged)
	})
}

// auditEveryAccountOf records a change to a person (their password) in
// the log of every account they are a member of.
func (s *Store) auditEveryAccountOf(tx *gorm.DB, by Actor, u *User, action string) error {
	var accounts []string
	if err := tx.Model(&Membership{}).Where("user_id = ?", u.ID).Order("account_id").Pluck("account_id", &accounts).Error; err != nil {
		return err
	}
	for _, acct := range accounts {
		if err := s.auditTx(tx, by, AuditEntry{AccountID: acct, Action: action, Target: u.ID, TargetLabel: u.Email}); err != nil {
			return err
		}
	}
	return nil
}

// AuditPerson records a change to a person made outside any account (a
// password reset, a confirmed address) in every account they belong to.
func (s *Store) AuditPerson(ctx context.Context, by Actor, u *User, action string) error {
	return s.db.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return s.auditEveryAccountOf(tx, by, u, action)
	})
}
