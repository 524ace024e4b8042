package models

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"gorm.io/gorm"
)

// The audit log (table audit_log) records every change made to an
// account, in the console or with the admin CLI: who made it, from which
// address, in which console request, and the setting before and after.
// A change made in a transaction writes its entry in that transaction
// (auditTx in a GORM transaction, auditW on the money path), so neither
// is ever written without the other; what changes nothing in the
// database but is worth recording (a sign-in) goes through Store.Audit.
// A change that fails validation writes nothing, entry included.
//
// To record a new kind of change: name its action below (and give it words
// in auditActions, which the page's filter offers); have its store method
// take `by Actor` and call s.auditTx(tx, by, AuditEntry{AccountID: …,
// Action: …, Target: …, TargetLabel: …, Field: …, Before: …, After: …})
// inside its transaction; handlers pass actor(c). Who, from where and the
// request id are filled in from by.

// Actor is who makes a change, and from where.
type Actor struct {
	UserID    string // the member's user id; "" for the admin CLI and the payment provider
	Name      string // the member's email, ActorAdminCLI or ActorPaymentProvider
	Operator  bool   // the admin CLI: may give a key more than the account's maximum rpm
	IP        string // the address the console request came from
	RequestID string // the console request's X-TT-Request-ID
}

// The actors that are not members of the account.
const (
	ActorAdminCLI        = "admin CLI"
	ActorPaymentProvider = "payment provider"
)

// AdminCLI is the operator's command line.
var AdminCLI = Actor{Name: ActorAdminCLI, Operator: true}

// The audit log's actions: what changed, then how. Field says which
// setting, for an action about several (key.updated). The member.* and
// password reset / verification actions are written by the team and mail
// features; the filter offers them all.
const (
	AuditAccountCreated       = "account.created"          // sign-up, or admin account create
	AuditSignedIn             = "account.signed_in"        // a member signed in to the console
	AuditPasswordChanged      = "account.password_changed" // on the account page
	AuditPasswordReset        = "account.password_reset"   // through a mailed link
	AuditEmailVerified        = "account.email_verified"
	AuditOwnershipTransferred = "account.ownership_transferred"

	AuditKeyCreated       = "key.created"
	AuditKeyUpdated       = "key.updated"             // one entry per setting changed: Field, Before, After
	AuditKeyKeepBodies    = "key.keep_bodies_changed" // started, stopped or changed keeping bodies
	AuditKeyDisabled      = "key.disabled"
	AuditKeyEnabled       = "key.enabled"
	AuditKeyRevoked       = "key.revoked"
	AuditKeyBodiesDeleted = "key.bodies_deleted" // the kept bodies, deleted on demand

	// The fixes of a request's page; Target is the key they change.
	AuditFixAllowIP    = "request.fix.allow_ip"
	AuditFixAddModel   = "request.fix.add_model"
	AuditFixRaiseLimit = "request.fix.raise_limit"

	AuditRechargeStarted   = "billing.recharge_started" // Target is the payment
	AuditPaymentCredited   = "billing.payment_credited" // by the payment provider; Target is the payment
	AuditBalanceAdjusted   = "billing.balance_adjusted" // admin credit; Target is the ledger entry
	AuditLowBalanceChanged = "billing.low_balance"      // the low-balance warning's threshold
	AuditAutoTopupChanged  = "billing.auto_topup"       // its settings, as Billing's sentence says them
	AuditCardSaved         = "billing.card_saved"       // by the payment provider, when it confirms a setup
	AuditCardRemoved       = "billing.card_removed"

	AuditMemberInvited     = "member.invited" // Target is the invitation, TargetLabel its email
	AuditInvitationRevoked = "member.invitation_revoked"
	AuditMemberJoined      = "member.joined" // an invitation accepted; Target is the user
	AuditMemberRoleChanged = "member.role_changed"
	AuditMemberRemoved     = "member.removed"
)

// Bounds of what an entry and a filter hold: a setting longer than
// maxAuditText is cut, marked with "…".
const (
	maxAuditText        = 2000
	maxAuditFilterValue = 200
)

// auditActions lists every action in the order the audit page's filter
// offers them, with its words.
var auditActions = []struct{ action, label string }{
	{AuditKeyCreated, "Key created"},
	{AuditKeyUpdated, "Key settings changed"},
	{AuditKeyKeepBodies, "Key body capture changed"},
	{AuditKeyDisabled, "Key disabled"},
	{AuditKeyEnabled, "Key enabled"},
	{AuditKeyRevoked, "Key revoked"},
	{AuditKeyBodiesDeleted, "Kept bodies deleted"},
	{AuditFixAllowIP, "Fix: IP allowed on a key"},
	{AuditFixAddModel, "Fix: model added to a key"},
	{AuditFixRaiseLimit, "Fix: key limit raised"},
	{AuditRechargeStarted, "Recharge started"},
	{AuditPaymentCredited, "Payment credited"},
	{AuditBalanceAdjusted, "Balance adjusted"},
	{AuditLowBalanceChanged, "Low-balance warning changed"},
	{AuditAutoTopupChanged, "Auto top-up changed"},
	{AuditCardSaved, "Card saved"},
	{AuditCardRemoved, "Saved card removed"},
	{AuditAccountCreated, "Account created"},
	{AuditSignedIn, "Signed in"},
	{AuditPasswordChanged, "Password changed"},
	{AuditPasswordReset, "Password reset"},
	{AuditEmailVerified, "Email verified"},
	{AuditMemberInvited, "Member invited"},
	{AuditInvitationRevoked, "Invitation revoked"},
	{AuditMemberJoined, "Member joined"},
	{AuditMemberRoleChanged, "Member role changed"},
	{AuditMemberRemoved, "Member removed"},
	{AuditOwnershipTransferred, "Ownership transferred"},
}

// AuditActions returns every action, in the order the filter offers them.
func AuditActions() []string {
	out := make([]string, len(auditActions))
	for i, a := range auditActions {
		out[i] = a.action
	}
	return out
}

// AuditActionLabel names an action as a person reads it.
func AuditActionLabel(action string) string {
	for _, a := range auditActions {
		if a.action == action {
			return a.label
		}
	}
	return action
}

func knownAuditAction(action string) bool {
	for _, a := range auditActions {
		if a.action == action {
			return true
		}
	}
	return false
}

// AuditEntry is one row of the audit log.
type AuditEntry struct {
	ID          string
	AccountID   string
	At          time.Time // UTC, the millisecond of the id
	ActorUserID *string   // nil: not a member (the admin CLI, the payment provider)
	Actor       string
	Action      string
	Target      string // what changed: a key, payment, user or ledger entry id
	TargetLabel string // its name when it changed: a key's name, an amount
	Field       string // the setting, for an action about several
	Before      string
	After       string
	IP          string `gorm:"column:ip"`
	RequestID   string
}

func (AuditEntry) TableName() string { return "audit_log" }

// Stamp returns e made by a: who, from where and in which request, where
// e does not say already.
func (a Actor) Stamp(e AuditEntry) AuditEntry {
	if e.Actor == "" {
		e.Actor = a.Name
		if a.UserID != "" {
			id := a.UserID
			e.ActorUserID = &id
		}
	}
	if e.IP == "" {
		e.IP = a.IP
	}
	if e.RequestID == "" {
		e.RequestID = a.RequestID
	}
	return e
}

// ready gives e its id and time and checks it says whose account, what
// and who.
func (e *AuditEntry) ready(ids *idSource) error {
	if e.AccountID == "" || e.Action == "" || e.Actor == "" {
		return fmt.Errorf("an audit entry needs an account, an action and an actor: %+v", *e)
	}
	e.ID = ids.newID("aud")
	e.At = idTime(e.ID)
	e.TargetLabel, e.Before, e.After = clip(e.TargetLabel), clip(e.Before), clip(e.After)
	return nil
}

func clip(s string) string {
	if len(s) <= maxAuditText {
		return s
	}
	cut := maxAuditText
	for cut > 0 && s[cut]&0xC0 == 0x80 { // not inside a UTF-8 sequence
		cut--
	}
	return s[:cut] + "…"
}

// idTime is the millisecond an id was made, UTC.
func idTime(id string) time.Time {
	_, rest, _ := strings.Cut(id, "_")
	u, err := ulid.ParseStrict(rest)
	if err != nil {
		return time.Now().UTC()
	}
	return ulid.Time(u.Time()).UTC()
}

// Audit records e, which has no transaction of its own to join: a
// sign-in, say. e needs its account, action and actor (Actor.Stamp fills
// in the actor, address and request).
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	if err := e.ready(s.ids); err != nil {
		return err
	}
	return s.db.w.WithContext(ctx).Create(&e).Error
}

// auditTx records e, made by by, in the GORM transaction tx of the change.
func (s *Store) auditTx(tx *gorm.DB, by Actor, e AuditEntry) error {
	e = by.Stamp(e)
	if err := e.ready(s.ids); err != nil {
		return err
	}
	return tx.Create(&e).Error
}

var qInsertAudit = newInsert("audit_log",
	"id, account_id, at, actor_user_id, actor, action, target, target_label, field, before, after, ip, request_id")

// auditW records e, made by by, in a write of the money path.
func auditW(w *wtx, by Actor, e AuditEntry) error {
	e = by.Stamp(e)
	if err := e.ready(w.ids); err != nil {
		return err
	}
	return w.later(qInsertAudit, e.ID, e.AccountID, e.At, e.ActorUserID, e.Actor, e.Action, e.Target, e.TargetLabel,
		e.Field, e.Before, e.After, e.IP, e.RequestID)
}

// AuditFilter narrows an account's audit log; zero fields match every
// entry. From is inclusive and To exclusive; as ids are ULIDs of the
// entry's time, both become bounds of the ids, like Cursor, the last id of
// the page before.
type AuditFilter struct {
	Actor    string // a member's user id, or the name of an actor that is not one (ActorAdminCLI …)
	Action   string
	Target   string
	From, To time.Time
	Cursor   string
}

// ParseAuditFilter reads the audit page's query: actor, action, from, to
// (RFC 3339 or YYYY-MM-DD, like the Requests page's) and cursor. Bad values
// are field errors; the filter returned then holds the good ones.
func ParseAuditFilter(q url.Values) (AuditFilter, error) {
	var f AuditFilter
	fe := FieldErrors{}
	if s := strings.TrimSpace(q.Get("actor")); len(s) > maxAuditFilterValue {
		fe.Add("actor", "Choose a member from the list.")
	} else {
		f.Actor = s
	}
	if s := strings.TrimSpace(q.Get("action")); s != "" {
		if knownAuditAction(s) {
			f.Action = s
		} else {
			fe.Add("action", "Choose one of the actions in the list.")
		}
	}
	f.From, f.To = parseFilterRange(q, fe)
	if s := q.Get("cursor"); s != "" {
		if looksLikeID("aud_", s) {
			f.Cursor = s
		} else {
			fe.Add("cursor", "That page link is not valid; showing the newest entries.")
		}
	}
	return f, fe.Err()
}

// Values returns the filter as a query string, the inverse of
// ParseAuditFilter, without its cursor and target.
func (f AuditFilter) Values() url.Values {
	v := url.Values{}
	if f.Actor != "" {
		v.Set("actor", f.Actor)
	}
	if f.Action != "" {
		v.Set("action", f.Action)
	}
	if !f.From.IsZero() {
		v.Set("from", f.From.UTC().Format(time.RFC3339))
	}
	if !f.To.IsZero() {
		v.Set("to", f.To.UTC().Format(time.RFC3339))
	}
	return v
}

// Filtered reports whether f narrows the log (a cursor does not).
func (f AuditFilter) Filtered() bool {
	return f.Actor != "" || f.Action != "" || f.Target != "" || !f.From.IsZero() || !f.To.IsZero()
}

// auditIDAt is the smallest audit id made at t or later, "" for the zero time.
func auditIDAt(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	var u ulid.ULID
	if err := u.SetTime(ulid.Timestamp(t)); err != nil {
		return "aud_"
	}
	return "aud_" + u.String()
}

// AuditLog returns up to limit entries of an account's audit log that
// match f, newest first, and the cursor of the next page ("" on the last).
// Pages are keyset pages, like the request log's.
func (s *Store) AuditLog(ctx context.Context, accountID string, f AuditFilter, limit int) ([]AuditEntry, string, error) {
	q := s.db.r.WithContext(ctx).Where("account_id = ?", accountID)
	if f.Actor != "" {
		if strings.HasPrefix(f.Actor, "user_") {
			q = q.Where("actor_user_id = ?", f.Actor)
		} else {
			q = q.Where("actor_user_id IS NULL AND actor = ?", f.Actor)
		}
	}
	if f.Action != "" {
		q = q.Where("action = ?", f.Action)
	}
	if f.Target != "" {
		q = q.Where("target = ?", f.Target)
	}
	q = idRange(q, auditIDAt(f.From), earlierID(auditIDAt(f.To), f.Cursor))
	var rows []AuditEntry
	if err := q.Order("id DESC").Limit(limit + 1).Find(&rows).Error; err != nil {
		return nil, "", err
	}
	for i := range rows {
		rows[i].At = rows[i].At.UTC()
	}
	if len(rows) > limit {
		return rows[:limit], rows[limit-1].ID, nil
	}
	return rows, "", nil
}

// EachAuditEntry calls fn with every entry of an account's log that
// matches f, newest first, reading a page at a time: memory stays flat
// however long the log.
func (s *Store) EachAuditEntry(ctx context.Context, accountID string, f AuditFilter, fn func(*AuditEntry) error) error {
	for {
		rows, next, err := s.AuditLog(ctx, accountID, f, 1000)
		if err != nil {
			return err
		}
		for i := range rows {
			if err := fn(&rows[i]); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		f.Cursor = next
	}
}

// AuditActor is someone who appears in an account's audit log: Value is
// what AuditFilter.Actor takes for them.
type AuditActor struct {
	Value string
	Name  string
}

// AuditActors returns everyone who appears in an account's audit log,
// members first (by name), then the admin CLI and the payment provider.
func (s *Store) AuditActors(ctx context.Context, accountID string) ([]AuditActor, error) {
	var rows []struct {
		ActorUserID *string
		Actor       string
	}
	err := s.db.r.WithContext(ctx).Model(&AuditEntry{}).Distinct("actor_user_id", "actor").
		Where("account_id = ?", accountID).Find(&rows).Error
	if err != nil {
		return nil, err
	}
	var members, others []AuditActor
	seen := map[string]bool{}
	for _, r := range rows {
		a := AuditActor{Value: r.Actor, Name: r.Actor}
		if r.ActorUserID != nil {
			a.Value = *r.ActorUserID
		}
		if seen[a.Value] {
			continue // a member whose email changed: one choice
		}
		seen[a.Value] = true
		if r.ActorUserID != nil {
			members = append(members, a)
		} else {
			others = append(others, a)
		}
	}
	byName := func(a, b AuditActor) int { return strings.Compare(a.Name, b.Name) }
	slices.SortFunc(members, byName)
	slices.SortFunc(others, byName)
	return append(members, others...), nil
}

// KeyCreatorEmail is the address of the member who created a key of the
// account, as the audit log records it, while they are still a member;
// "" for a key the admin CLI made or whose creator has left.
func (s *Store) KeyCreatorEmail(ctx context.Context, accountID, keyID string) (string, error) {
	var out []string
	err := s.db.r.WithContext(ctx).Table("audit_log").
		Joins("JOIN memberships ON memberships.user_id = audit_log.actor_user_id AND memberships.account_id = audit_log.account_id").
		Joins("JOIN users ON users.id = memberships.user_id").
		Where("audit_log.account_id = ? AND audit_log.target = ? AND audit_log.action = ?", accountID, keyID, AuditKeyCreated).
		Limit(1).Pluck("users.email", &out).Error
	if err != nil || len(out) == 0 {
		return "", err
	}
	return out[0], nil
}
