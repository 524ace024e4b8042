// Package views holds the console's templ components: the layout, one file
// per page, and shared pieces in components/. Views take typed props and
// never reach for the database or the request.
package views

import "strconv"

// Page is what the layout needs on every page.
type Page struct {
	Title     string
	Nav       string // the active navigation item: overview, requests, usage, keys, billing
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
	Email      string
	Balance    string
	LowBalance bool
	// BalanceState is "empty" at zero or below (red), "low" below the
	// account's low-balance warning (amber), else "". The header says it
	// in words too, never by colour alone.
	BalanceState string
	// Unverified is on until the user confirms their email address: a
	// banner asks for it, with a button that sends the link again.
	Unverified bool
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
