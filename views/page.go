// Package views holds the console's templ components: the layout, one file
// per page, and shared pieces in components/. Views take typed props and
// never reach for the database or the request.
package views

// Page is what the layout needs on every page.
type Page struct {
	Title     string
	Nav       string // the active navigation item: overview, requests, keys, billing
	User      *User  // nil when signed out
	CSRF      string
	Flashes   []string
	RequestID string
	// TestMode is on while recharges go through the test payment
	// provider: every page says that they are free.
	TestMode bool
}

// User is the signed-in person as the header shows them.
type User struct {
	Email      string
	Balance    string
	LowBalance bool
	// BalanceState is "empty" at zero or below (red), "low" below the
	// account's low-balance warning (amber), else "". The header says it
	// in words too, never by colour alone.
	BalanceState string
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
