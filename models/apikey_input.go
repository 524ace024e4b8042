package models

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// KeyInput is what a person typed for a key, from the console's form or
// the command line's flags. Everything arrives as text and is validated
// in one place, so both get the same messages.
type KeyInput struct {
	Name            string
	Models          []string // model ids; an entry may itself be a comma-separated list
	AllowedIPs      string   // addresses and CIDRs, separated by commas or new lines
	MonthlyLimitUSD string   // "" = no limit
	RPM             string   // "" = the default when creating
	ExpiresOn       string   // YYYY-MM-DD: the key stops working at 00:00 UTC that day; "" = never
	Nonce           string   // the console form's one-time token; "" from the command line
	KeepBodies      string   // "on" keeps request and response bodies
	KeepBodiesDays  string   // how long they are kept, 1 to MaxKeepBodiesDays; "" = as before (or the default)
}

// Bounds on key settings.
const (
	maxOperatorRPM = 1_000_000
	maxModelsInput = 50
	expiryLayout   = "2006-01-02"

	DefaultKeepBodiesDays = 7
	MaxKeepBodiesDays     = 30
)

// keySettings are validated, normalised settings, ready to store.
type keySettings struct {
	Name       string
	Models     string
	AllowedIPs string
	Limit      *int64
	RPM        int
	ExpiresAt  *time.Time
	KeepBodies bool
	KeepDays   int
}

// keyRules is what validation depends on besides the input.
type keyRules struct {
	catalogue []CatalogModel
	maxRPM    int // the account's maximum
	operator  bool
	now       time.Time
	current   *APIKey // nil when creating
}

// parseKeyInput validates every field and returns all messages at once.
func parseKeyInput(in KeyInput, r keyRules) (keySettings, error) {
	var out keySettings
	fe := FieldErrors{}
	var msg string
	if out.Name, msg = parseKeyName(in.Name); msg != "" {
		fe.Add("name", msg)
	}
	if out.Models, msg = parseModelScope(in.Models, r.catalogue); msg != "" {
		fe.Add("models", msg)
	}
	if ips, err := ParseIPAllowList(in.AllowedIPs); err != nil {
		fe.Add("allowed_ips", err.Error())
	} else {
		out.AllowedIPs = FormatIPAllowList(ips)
	}
	if out.Limit, msg = parseMonthlyLimit(in.MonthlyLimitUSD); msg != "" {
		fe.Add("monthly_limit_usd", msg)
	}
	if out.RPM, msg = parseRPM(in.RPM, r); msg != "" {
		fe.Add("rpm", msg)
	}
	if out.ExpiresAt, msg = parseExpiry(in.ExpiresOn, r); msg != "" {
		fe.Add("expires_at", msg)
	}
	out.KeepBodies = in.KeepBodies == "on"
	if out.KeepDays, msg = parseKeepDays(in.KeepBodiesDays, r); msg != "" {
		fe.Add("keep_bodies_days", msg)
	}
	return out, fe.Err()
}

// parseKeepDays reads how many days a key keeps bodies; "" keeps what the
// key has, or the default.
func parseKeepDays(s string, r keyRules) (int, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		if r.current != nil && r.current.KeepBodiesDays > 0 {
			return r.current.KeepBodiesDays, ""
		}
		return DefaultKeepBodiesDays, ""
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxKeepBodiesDays {
		return 0, fmt.Sprintf("Enter a whole number of days from 1 to %d.", MaxKeepBodiesDays)
	}
	return n, ""
}

func parseKeyName(s string) (string, string) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", "Give the key a name, like “production server”."
	case !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0:
		return "", "A name cannot contain control characters."
	case utf8.RuneCountInString(s) > MaxKeyNameLen:
		return "", fmt.Sprintf("A name can be at most %d characters.", MaxKeyNameLen)
	}
	return s, ""
}

// parseModelScope returns the chosen models in catalogue order, comma
// separated, or "" for all models.
func parseModelScope(values []string, catalogue []CatalogModel) (string, string) {
	chosen := map[string]bool{}
	n := 0
	for _, v := range values {
		for _, id := range strings.Split(v, ",") {
			id = strings.TrimSpace(id)
			if id == "" {
				continue
			}
			if n++; n > maxModelsInput {
				return "", "Too many models: choose from the catalogue."
			}
			if !slices.ContainsFunc(catalogue, func(m CatalogModel) bool { return m.ID == id }) {
				return "", fmt.Sprintf("%q is not a model in the catalogue.", truncate(id, 64))
			}
			chosen[id] = true
		}
	}
	var ids []string
	for _, m := range catalogue {
		if chosen[m.ID] {
			ids = append(ids, m.ID)
		}
	}
	return strings.Join(ids, ","), ""
}

// parseMonthlyLimit reads a limit in dollars; "" is no limit.
func parseMonthlyLimit(s string) (*int64, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, ""
	}
	m, ok := ParseUSD(s, false)
	if ok && m > 0 {
		return &m, ""
	}
	switch {
	case ok:
		return nil, "Enter an amount above $0, or leave the field empty for no limit."
	case strings.HasPrefix(s, "-"):
		return nil, "A limit cannot be negative. Leave the field empty for no limit."
	case strings.ContainsAny(s, "eE") && strings.IndexFunc(s, unicode.IsDigit) >= 0:
		return nil, "Write the amount in plain digits, like 1000 or 12.50."
	}
	whole, frac, _ := strings.Cut(strings.TrimPrefix(strings.ReplaceAll(s, ",", ""), "$"), ".")
	if allDigits(whole) && allDigits(frac) {
		if len(frac) > 6 {
			return nil, "Use at most six decimal places."
		}
		return nil, "The largest limit is " + FormatUSD(MaxUSDInput*MicrosPerUSD) + "."
	}
	return nil, "Enter an amount in dollars, like 25 or 12.50."
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func parseRPM(s string, r keyRules) (int, string) {
	s = strings.TrimSpace(s)
	highest := r.maxRPM
	if r.operator {
		highest = maxOperatorRPM
	}
	if s == "" && r.current == nil {
		return min(DefaultKeyRPM, highest), ""
	}
	want := fmt.Sprintf("Enter a whole number of requests per minute from 1 to %d.", highest)
	if !r.operator {
		want = fmt.Sprintf("Enter a whole number of requests per minute from 1 to %d, your account's maximum.", highest)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, want
	}
	// A limit an operator set above the account's maximum may stay.
	if n > highest && (r.current == nil || n != r.current.RPM) {
		return 0, want
	}
	return n, ""
}

// parseExpiry reads the day a key stops working (at 00:00 UTC); "" is
// never. A date already passed is refused unless it is the one the key has.
func parseExpiry(s string, r keyRules) (*time.Time, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, ""
	}
	t, err := time.Parse(expiryLayout, s)
	if err != nil {
		return nil, "Enter a date as YYYY-MM-DD, or leave the field empty for a key that does not expire."
	}
	if r.current != nil && r.current.ExpiresAt != nil && r.current.ExpiresAt.UTC().Format(expiryLayout) == s {
		kept := r.current.ExpiresAt.UTC()
		return &kept, ""
	}
	if !t.After(r.now) {
		return nil, "Choose a date in the future, or leave the field empty for a key that does not expire."
	}
	return &t, ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// LimitInput writes a limit the way the form field shows it: "12.5".
func LimitInput(m *int64) string {
	if m == nil {
		return ""
	}
	s := strconv.FormatInt(*m/MicrosPerUSD, 10)
	if f := *m % MicrosPerUSD; f != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%06d", f), "0")
	}
	return s
}

// ExpiryInput writes an expiry the way the form field shows it.
func ExpiryInput(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(expiryLayout)
}

// describe* write settings the way key events and summaries show them.

func describeModels(models string) string {
	if models == "" {
		return "all models"
	}
	return strings.ReplaceAll(models, ",", ", ")
}

func describeIPs(ips string) string {
	if ips == "" {
		return "any source"
	}
	return strings.ReplaceAll(ips, "\n", ", ")
}

func describeLimit(m *int64) string {
	if m == nil {
		return "no limit"
	}
	return FormatUSD(*m)
}

func describeBodies(keep bool, days int) string {
	if !keep {
		return "not kept"
	}
	if days == 1 {
		return "kept 1 day"
	}
	return fmt.Sprintf("kept %d days", days)
}

func describeExpiry(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format(expiryLayout)
}
