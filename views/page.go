// Package views holds the console's templ components: the layout, one file
// per page, and shared pieces in components/. Views take typed props and
// never reach for the database or the request.
package views

import "strconv"

// Page is what the layout needs on every page.
type Page struct {
	Title     string
	Nav       string // the active navigation item: overview, requests, usage, keys, billing, team, audit
	User      *User  // nil when signed out
	CSRF      string
	Flashes   []string
	RequestID string
	// TestMode is on while recharges go through the test payment
	// provider: every page says that they are free.
	TestMode bool
	// Zone names the zone the page shows its times in: "UTC" or an IANA
	// name. Here is the page's own path, where the zone switch returns.
	Zone string
	Here string
	// Can says which actions the user's role allows in the active
	// account: pages hide the buttons of the others.
	Can Can
}

// Can is what the signed-in user's role allows, beyond reading.
type Can struct {
	Fix      bool // a request's fix-it actions
	Keys     bool // change keys, see kept bodies
	Billing  bool // recharge, billing settings
	Members  bool // invite, change roles, remove members
	Transfer bool // transfer ownership
	// KeysBy and BillingBy name the roles that may change keys, and move
	// money: "owner, admin or developer".
	KeysBy    string
	BillingBy string
}

// ZoneLabel is the zone as a field's label names it: "UTC", or
// "Europe/Paris".
func (p Page) ZoneLabel() string {
	if p.Zone == "" {
		return "UTC"
	}
	return p.Zone
}

// LocalTime reports whether the page shows times in a zone other than UTC.
func (p Page) LocalTime() bool { return p.ZoneLabel() != "UTC" }

// User is the signed-in person as the header shows them.
type User struct {
	Email string
	// Account and Role: the active account's name and the user's role
	// there, "" when the user works in no account. Accounts lists every
	// account of the user, for the switcher.
	Account  string
	Role     string
	Accounts []AccountChoice

	Balance    string
	LowBalance bool
	// BalanceState is "empty" at zero or below (red), "low" below the
	// account's low-balance warning (amber), else "". The header says it
	// in words too, never by colour alone.
	BalanceState string
	// Unverified is on until the user confirms their email address: a
	// banner asks for it, with a button that sends the link again.
	Unverified bool
	// CanSeeAudit shows the Audit log in the navigation.
	CanSeeAudit bool
}

// switcherTitle names the active account and the role in full, where the
// header cuts a long name short.
func switcherTitle(u *User) string {
	if u.Account == "" {
		return "You are not working in any account"
	}
	return u.Account + ", as " + u.Role + ": switch account"
}

// AccountChoice is one of the user's accounts in the switcher.
type AccountChoice struct {
	ID      string
	Name    string
	Role    string
	Current bool
}

// Header balance states.
const (
	BalanceEmpty = "empty"
	BalanceLow   = "low"
)

// Form carries a submitted form back to its page: the values typed and a
// message per field.
type Form struct {
	Values  map[string]string
	Errors  map[string]string
	Message string
}

// Value returns the submitted value of a field.
func (f Form) Value(name string) string { return f.Values[name] }

// Error returns the message for a field, or "".
func (f Form) Error(name string) string { return f.Errors[name] }

// Invalid reports whether a field has a message.
func (f Form) Invalid(name string) bool { return f.Errors[name] != "" }

// RequestsPerMinute is a rate limit in words: "1 request per minute",
// "60 requests per minute".
func RequestsPerMinute(n int) string {
	if n == 1 {
		return "1 request per minute"
	}
	return strconv.Itoa(n) + " requests per minute"
}
