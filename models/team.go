package models

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// The roles a member may hold in an account. An account has exactly one
// owner; ownership moves only by a transfer.
const (
	RoleOwner     = "owner"
	RoleAdmin     = "admin"
	RoleDeveloper = "developer"
	RoleBilling   = "billing"
	RoleViewer    = "viewer"
)

// Roles lists every role, from the most to the least powerful.
var Roles = []string{RoleOwner, RoleAdmin, RoleDeveloper, RoleBilling, RoleViewer}

// GrantableRoles are the roles an invitation or a role change may give:
// every role but owner.
var GrantableRoles = []string{RoleAdmin, RoleDeveloper, RoleBilling, RoleViewer}

// RoleLabel is a role as a sentence names it: "Owner", "Developer".
func RoleLabel(role string) string {
	if role == "" {
		return ""
	}
	return strings.ToUpper(role[:1]) + role[1:]
}

// InvitationTTL is how long an invitation link can be used.
const InvitationTTL = 7 * 24 * time.Hour

// Membership makes a user a member of an account, with a role there.
type Membership struct {
	AccountID string `gorm:"primaryKey"`
	UserID    string `gorm:"primaryKey"`
	Role      string
	CreatedAt time.Time
}

// AccountRole is a user's place in one account: which account, its name,
// and the role the user holds there.
type AccountRole struct {
	AccountID   string
	AccountName string
	Role        string
}

// Member is a member of an account as the Team page lists them.
type Member struct {
	UserID   string
	Email    string
	Role     string
	JoinedAt time.Time
}

// Invitation asks the person at Email to join an account with a role.
// Only the SHA-256 of its token is kept; the link holds the token.
type Invitation struct {
	ID         string
	AccountID  string
	Email      string
	Role       string
	TokenHash  string
	InvitedBy  string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	AcceptedAt *time.Time
	RevokedAt  *time.Time
}

// Invitation states, as State reports them.
const (
	InvitationOpen     = "open"
	InvitationExpired  = "expired"
	InvitationAccepted = "accepted"
	InvitationRevoked  = "revoked"
)

// State says whether the invitation can still be accepted at now, or why
// not. An accepted invitation stays accepted; an expired one reads as
// expired even when it was closed later to make room for a new one.
func (inv *Invitation) State(now time.Time) string {
	switch {
	case inv.AcceptedAt != nil:
		return InvitationAccepted
	case !now.Before(inv.ExpiresAt):
		return InvitationExpired
	case inv.RevokedAt != nil:
		return InvitationRevoked
	}
	return InvitationOpen
}

// InvitationDetail is an invitation with the names its page shows.
type InvitationDetail struct {
	Invitation
	AccountName  string
	InviterEmail string
	// UserExists says whether someone has signed up with the invited email.
	UserExists bool
}

// forbidden refuses an action the member's role does not allow.
func forbidden(msg string) error { return &Error{Code: EFORBIDDEN, Message: msg} }

// RoleIn returns the user's role in an account; ENOTFOUND when the user is
// not a member of it.
func (s *Store) RoleIn(ctx context.Context, accountID, userID string) (*AccountRole, error) {
	var ar AccountRole
	err := s.db.r.WithContext(ctx).Table("memberships").
		Select("memberships.account_id, accounts.name AS account_name, memberships.role").
		Joins("JOIN accounts ON accounts.id = memberships.account_id").
		Where("memberships.account_id = ? AND memberships.user_id = ?", accountID, userID).
		Take(&ar).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &ar, nil
}

// AccountsOf returns every account the user is a member of, by name.
func (s *Store) AccountsOf(ctx context.Context, userID string) ([]AccountRole, error) {
	var out []AccountRole
	err := s.db.r.WithContext(ctx).Table("memberships").
		Select("memberships.account_id, accounts.name AS account_name, memberships.role").
		Joins("JOIN accounts ON accounts.id = memberships.account_id").
		Where("memberships.user_id = ?", userID).
		Order("accounts.name, accounts.id").Find(&out).Error
	return out, err
}

// HomeAccount is the account a new session of the user starts in: the one
// the user came in through while still a member of it, else the first one
// joined, else "" (the user belongs to no account).
func (s *Store) HomeAccount(ctx context.Context, u *User) (string, error) {
	var ms []Membership
	err := s.db.r.WithContext(ctx).Where("user_id = ?", u.ID).Order("created_at, account_id").Find(&ms).Error
	if err != nil || len(ms) == 0 {
		return "", err
	}
	for _, m := range ms {
		if m.AccountID == u.AccountID {
			return m.AccountID, nil
		}
	}
	return ms[0].AccountID, nil
}

// Members returns an account's members: the owner first, then by role and
// email.
func (s *Store) Members(ctx context.Context, accountID string) ([]Member, error) {
	var out []Member
	err := s.db.r.WithContext(ctx).Table("memberships").
		Select("memberships.user_id, users.email, memberships.role, memberships.created_at AS joined_at").
		Joins("JOIN users ON users.id = memberships.user_id").
		Where("memberships.account_id = ?", accountID).
		Order("users.email").Find(&out).Error
	slices.SortStableFunc(out, func(a, b Member) int {
		return slices.Index(Roles, a.Role) - slices.Index(Roles, b.Role)
	})
	return out, err
}

// MemberOf returns one member of an account; ENOTFOUND for anyone else.
func (s *Store) MemberOf(ctx context.Context, accountID, userID string) (*Member, error) {
	var m Member
	err := s.db.r.WithContext(ctx).Table("memberships").
		Select("memberships.user_id, users.email, memberships.role, memberships.created_at AS joined_at").
		Joins("JOIN users ON users.id = memberships.user_id").
		Where("memberships.account_id = ? AND memberships.user_id = ?", accountID, userID).Take(&m).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	return &m, err
}

// OpenInvitations returns an account's invitations not yet accepted or
// revoked, newest first; expired ones among them say so by their State.
func (s *Store) OpenInvitations(ctx context.Context, accountID string) ([]Invitation, error) {
	var out []Invitation
	err := s.db.r.WithContext(ctx).Where("account_id = ? AND accepted_at IS NULL AND revoked_at IS NULL", accountID).
		Order("created_at DESC, id DESC").Find(&out).Error
	return out, err
}

// validateEmail returns the problem with an email address, or "".
func validateEmail(email string) string {
	if email == "" {
		return "Enter an email address."
	}
	return addressProblem(email)
}

func validateGrantable(role, field string, fe FieldErrors) {
	switch {
	case role == "":
		fe.Add(field, "Choose a role.")
	case role == RoleOwner:
		fe.Add(field, "An account has one owner. To make someone the owner, transfer ownership to them.")
	case !slices.Contains(GrantableRoles, role):
		fe.Add(field, "Choose one of the roles: admin, developer, billing or viewer.")
	}
}

// Invite records an invitation for email to join the account with role
// and returns it with the token its link carries (kept nowhere else). An
// address that is already a member, or already has an open invitation, is
// a field error. An expired invitation to the same address is closed, so
// a new one can be sent.
func (s *Store) Invite(ctx context.Context, by Actor, accountID, email, role string, now time.Time) (*Invitation, string, error) {
	email = NormalizeEmail(email)
	fe := FieldErrors{}
	if msg := validateEmail(email); msg != "" {
		fe.Add("email", msg)
	}
	validateGrantable(role, "role", fe)
	if err := fe.Err(); err != nil {
		return nil, "", err
	}
	token, err := newToken()
	if err != nil {
		return nil, "", err
	}
	now = now.UTC()
	inv := Invitation{ID: s.NewID("inv"), AccountID: accountID, Email: email, Role: role, TokenHash: HashToken(token),
		InvitedBy: by.UserID, CreatedAt: now, ExpiresAt: now.Add(InvitationTTL)}
	already := func() error {
		return &Error{Code: ECONFLICT, Message: "Please correct the highlighted fields.",
			Fields: map[string]string{"email": email + " already has an open invitation. Revoke it first to send a new one."}}
	}
	err = s.db.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var members int64
		err := tx.Table("memberships").Joins("JOIN users ON users.id = memberships.user_id").
			Where("memberships.account_id = ? AND users.email = ?", accountID, email).Count(&members).Error
		if err != nil {
			return err
		}
		if members > 0 {
			return &Error{Code: ECONFLICT, Message: "Please correct the highlighted fields.",
				Fields: map[string]string{"email": email + " is already a member of this account."}}
		}
		open := tx.Model(&Invitation{}).Where("account_id = ? AND email = ? AND accepted_at IS NULL AND revoked_at IS NULL", accountID, email)
		var live int64
		if err := open.Session(&gorm.Session{}).Where("expires_at > ?", now).Count(&live).Error; err != nil {
			return err
		}
		if live > 0 {
			return already()
		}
		if err := open.Session(&gorm.Session{}).Update("revoked_at", now).Error; err != nil {
			return err
		}
		if err := tx.Create(&inv).Error; err != nil {
			if isUniqueViolation(err) {
				return already()
			}
			return err
		}
		return s.auditTx(tx, by, AuditEntry{AccountID: accountID, Action: AuditMemberInvited, Target: inv.ID,
			TargetLabel: inv.Email, Field: "role", After: inv.Role})
	})
	if err != nil {
		return nil, "", err
	}
	return &inv, token, nil
}

func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// InvitationByToken returns the invitation a link's token opens, whatever
// its state; ENOTFOUND for a token no invitation has.
func (s *Store) InvitationByToken(ctx context.Context, token string) (*InvitationDetail, error) {
	if token == "" || len(token) > 128 {
		return nil, ErrNotFound
	}
	var d InvitationDetail
	err := s.db.r.WithContext(ctx).Where("token_hash = ?", HashToken(token)).Take(&d.Invitation).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	acct, err := s.AccountByID(ctx, d.AccountID)
	if err != nil {
		return nil, err
	}
	d.AccountName = acct.Name
	if inviter, err := s.UserByID(ctx, d.InvitedBy); err == nil {
		d.InviterEmail = inviter.Email
	} else if ErrorCode(err) != ENOTFOUND {
		return nil, err
	}
	var n int64
	if err := s.db.r.WithContext(ctx).Model(&User{}).Where("email = ?", d.Email).Count(&n).Error; err != nil {
		return nil, err
	}
	d.UserExists = n > 0
	return &d, nil
}

// InvitationClosed explains why an invitation in state can no longer be used.
func InvitationClosed(state string) error {
	msg := map[string]string{
		InvitationExpired:  "This invitation has expired. Ask for a new one.",
		InvitationAccepted: "This invitation has already been used.",
		InvitationRevoked:  "This invitation was revoked. Ask for a new one if you still need access.",
	}[state]
	if msg == "" {
		return ErrNotFound
	}
	return &Error{Code: ECONFLICT, Message: msg}
}

// useInvitation marks an open invitation accepted inside tx, once: a
// second use, an expired or a revoked invitation writes nothing.
func useInvitation(tx *gorm.DB, inv *Invitation, now time.Time) error {
	res := tx.Model(&Invitation{}).
		Where("id = ? AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?", inv.ID, now).
		Update("accepted_at", now)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		var cur Invitation
		if err := tx.Where("id = ?", inv.ID).Take(&cur).Error; err != nil {
			return err
		}
		state := cur.State(now)
		if state == InvitationOpen { // expired between the read and the write
			state = InvitationExpired
		}
		return InvitationClosed(state)
	}
	return nil
}

// AcceptInvitation makes the signed-in user a member of the invitation's
// account with its role, if it is still open at now. Only the invited
// email may accept; a member already there, or an invitation used,
// expired or revoked, changes nothing.
func (s *Store) AcceptInvitation(ctx context.Context, by Actor, token string, u *User, now time.Time) (*InvitationDetail, error) {
	d, err := s.InvitationByToken(ctx, token)
	if err != nil {
		return nil, err
	}
	now = now.UTC()
	if st := d.State(now); st != InvitationOpen {
		return nil, InvitationClosed(st)
	}
	if d.Email != u.Email {
		return nil, forbidden("This invitation is for " + d.Email + ". Log in as " + d.Email + " to accept it.")
	}
	err = s.db.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := useInvitation(tx, &d.Invitation, now); err != nil {
			return err
		}
		err := tx.Create(&Membership{AccountID: d.AccountID, UserID: u.ID, Role: d.Role, CreatedAt: now}).Error
		if isUniqueViolationErr(err) {
			return &Error{Code: ECONFLICT, Message: "You are already a member of " + d.AccountName + "."}
		}
		if err != nil {
			return err
		}
		by.UserID, by.Name = u.ID, u.Email // the one who accepts
		return s.auditTx(tx, by, joinedEntry(d, u))
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

func isUniqueViolationErr(err error) bool { return err != nil && isUniqueViolation(err) }

// SignupByInvitation creates the user an invitation names, with the
// password chosen, as a member of the invitation's account with its role.
// The user gets no account of their own: the invitation's account is the
// one they came in through. An email that already has a user must log in
// and accept instead.
func (s *Store) SignupByInvitation(ctx context.Context, by Actor, token, password string, now time.Time) (*User, *InvitationDetail, error) {
	d, err := s.InvitationByToken(ctx, token)
	if err != nil {
		return nil, nil, err
	}
	now = now.UTC()
	if st := d.State(now); st != InvitationOpen {
		return nil, nil, InvitationClosed(st)
	}
	if d.UserExists {
		return nil, nil, registeredInvitee(d.Email)
	}
	if msg := passwordProblem(password); msg != "" {
		return nil, nil, FieldErrors{"password": msg}.Err()
	}
	hash, err := s.hashes.hash(ctx, password)
	if err != nil {
		return nil, nil, err
	}
	// The invitation reached this address, so it is confirmed.
	user := User{ID: s.NewID("user"), AccountID: d.AccountID, Email: d.Email, PasswordHash: hash,
		CreatedAt: now, PasswordChangedAt: now, EmailVerifiedAt: &now}
	err = s.db.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := useInvitation(tx, &d.Invitation, now); err != nil {
			return err
		}
		if err := tx.Create(&user).Error; err != nil {
			if isUniqueViolation(err) {
				return registeredInvitee(d.Email)
			}
			return err
		}
		if err := tx.Create(&Membership{AccountID: d.AccountID, UserID: user.ID, Role: d.Role, CreatedAt: now}).Error; err != nil {
			return err
		}
		by.UserID, by.Name = user.ID, user.Email // the newcomer joins
		return s.auditTx(tx, by, joinedEntry(d, &user))
	})
	if err != nil {
		return nil, nil, err
	}
	return &user, d, nil
}

// joinedEntry is the audit log's entry of u joining d's account.
func joinedEntry(d *InvitationDetail, u *User) AuditEntry {
	return AuditEntry{AccountID: d.AccountID, Action: AuditMemberJoined, Target: u.ID, TargetLabel: u.Email,
		Field: "role", After: d.Role}
}

func registeredInvitee(email string) error {
	return &Error{Code: ECONFLICT, Message: email + " already has a TT Console login. Log in to accept the invitation."}
}

// ownerTouched refuses a change to the owner's membership: the owner
// acting on themself is told how ownership moves; anyone else may not.
func ownerTouched(actorRole, what string) error {
	if actorRole == RoleOwner {
		return &Error{Code: ECONFLICT, Message: "An account always has exactly one owner, so the owner cannot " + what +
			". Transfer ownership to another member first."}
	}
	return forbidden("Only the owner can do that: an admin cannot " + what + " the account's owner.")
}

// SetMemberRole gives a member another role. No one is made owner this way
// (ownership is transferred), and the owner's role does not change.
func (s *Store) SetMemberRole(ctx context.Context, by Actor, accountID, actorRole, userID, role string) error {
	fe := FieldErrors{}
	validateGrantable(role, "role", fe)
	if err := fe.Err(); err != nil {
		return err
	}
	m, err := s.MemberOf(ctx, accountID, userID)
	if err != nil {
		return err
	}
	if m.Role == RoleOwner {
		return ownerTouched(actorRole, "change the role of")
	}
	return s.db.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var was string
		err := tx.Model(&Membership{}).Select("role").Where("account_id = ? AND user_id = ? AND role <> ?",
			accountID, userID, RoleOwner).Take(&was).Error
		if errors.Is(err, gorm.ErrRecordNotFound) { // removed, or made owner, since the read
			return ErrNotFound
		}
		if err != nil || was == role {
			return err
		}
		res := tx.Model(&Membership{}).Where("account_id = ? AND user_id = ? AND role = ?", accountID, userID, was).
			Update("role", role)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 { // changed meanwhile
			return ErrNotFound
		}
		return s.auditTx(tx, by, AuditEntry{AccountID: accountID, Action: AuditMemberRoleChanged, Target: userID,
			TargetLabel: m.Email, Field: "role", Before: was, After: role})
	})
}

// RemoveMember takes a member out of the account and ends, in the same
// transaction, every session of theirs working in it. The owner cannot be
// removed: an account always keeps its one owner.
func (s *Store) RemoveMember(ctx context.Context, by Actor, accountID, actorRole, userID string) error {
	m, err := s.MemberOf(ctx, accountID, userID)
	if err != nil {
		return err
	}
	if m.Role == RoleOwner {
		return ownerTouched(actorRole, "remove")
	}
	return s.db.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Where("account_id = ? AND user_id = ? AND role <> ?", accountID, userID, RoleOwner).Delete(&Membership{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		if err := tx.Where("user_id = ? AND account_id = ?", userID, accountID).Delete(&Session{}).Error; err != nil {
			return err
		}
		return s.auditTx(tx, by, AuditEntry{AccountID: accountID, Action: AuditMemberRemoved, Target: userID,
			TargetLabel: m.Email, Field: "role", Before: m.Role})
	})
}

// RevokeInvitation closes an open invitation of the account at now: its
// link stops working. One used already is a conflict and stays as it is.
func (s *Store) RevokeInvitation(ctx context.Context, by Actor, accountID, id string, now time.Time) (*Invitation, error) {
	var inv Invitation
	err := s.db.r.WithContext(ctx).Where("id = ? AND account_id = ?", id, accountID).Take(&inv).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	now = now.UTC()
	err = s.db.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&Invitation{}).
			Where("id = ? AND account_id = ? AND accepted_at IS NULL AND revoked_at IS NULL", id, accountID).
			Update("revoked_at", now)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			if inv.AcceptedAt != nil || inv.State(now) == InvitationAccepted {
				return &Error{Code: ECONFLICT, Message: "The invitation to " + inv.Email + " has already been accepted."}
			}
			return &Error{Code: ECONFLICT, Message: "The invitation to " + inv.Email + " was already revoked."}
		}
		return s.auditTx(tx, by, AuditEntry{AccountID: accountID, Action: AuditInvitationRevoked, Target: inv.ID,
			TargetLabel: inv.Email})
	})
	if err != nil {
		return nil, err
	}
	inv.RevokedAt = &now
	return &inv, nil
}

// TransferOwnership makes another member the owner and the owner an admin,
// in one transaction: at no moment has the account two owners or none.
func (s *Store) TransferOwnership(ctx context.Context, by Actor, accountID, toUserID string) error {
	ownerID := by.UserID
	if ownerID == toUserID {
		return &Error{Code: ECONFLICT, Message: "You are the owner already."}
	}
	return s.db.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&Membership{}).Where("account_id = ? AND user_id = ? AND role = ?", accountID, ownerID, RoleOwner).
			Update("role", RoleAdmin)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return forbidden("Only the owner can transfer ownership.")
		}
		res = tx.Model(&Membership{}).Where("account_id = ? AND user_id = ?", accountID, toUserID).Update("role", RoleOwner)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		var to string
		if err := tx.Model(&User{}).Select("email").Where("id = ?", toUserID).Take(&to).Error; err != nil {
			return err
		}
		return s.auditTx(tx, by, AuditEntry{AccountID: accountID, Action: AuditOwnershipTransferred, Target: toUserID,
			TargetLabel: to, Field: "owner", Before: by.Name, After: to})
	})
}

// SwitchAccount makes accountID the active account of a session, if the
// session's user is a member there; anyone else's account is refused and
// the session stays where it was.
func (s *Store) SwitchAccount(ctx context.Context, token, userID, accountID string) (*AccountRole, error) {
	ar, err := s.RoleIn(ctx, accountID, userID)
	if ErrorCode(err) == ENOTFOUND {
		return nil, forbidden("You are not a member of that account.")
	}
	if err != nil {
		return nil, err
	}
	res := s.db.w.WithContext(ctx).Model(&Session{}).
		Where("token_hash = ? AND user_id = ? AND EXISTS (SELECT 1 FROM memberships m WHERE m.account_id = ? AND m.user_id = ?)",
			HashToken(token), userID, accountID, userID).
		Update("account_id", accountID)
	if res.Error != nil {
		return nil, res.Error
	}
	if res.RowsAffected == 0 {
		return nil, forbidden("You are not a member of that account.")
	}
	return ar, nil
}
