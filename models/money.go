package models

import (
	"strconv"
	"strings"
)

// Micros is an amount of money in micro-dollars (1 USD = 1,000,000).
// Money is never a float.
type Micros = int64

// MicrosPerUSD is one dollar.
const MicrosPerUSD int64 = 1_000_000

// MaxUSDInput bounds amounts typed by people, far below int64 overflow.
const MaxUSDInput int64 = 1_000_000_000 // $1e9

// FormatUSD shows an amount the way the console does: "$12.34" for a cent
// or more, full precision for smaller amounts ("$0.001536"), never in
// scientific notation.
func FormatUSD(m int64) string {
	neg := m < 0
	if neg {
		m = -m
	}
	var s string
	if m != 0 && m < 10_000 {
		s = "0." + strings.TrimRight(pad6(m), "0")
	} else {
		// Round half up to the cent for display.
		cents := (m + 5_000) / 10_000
		s = groupThousands(cents/100) + "." + pad2(cents%100)
	}
	if neg {
		return "-$" + s
	}
	return "$" + s
}

// FormatUSDExact shows every micro-dollar: "$12.5", "$0.001536".
func FormatUSDExact(m int64) string {
	neg := m < 0
	if neg {
		m = -m
	}
	s := groupThousands(m / MicrosPerUSD)
	if f := m % MicrosPerUSD; f != 0 {
		s += "." + strings.TrimRight(pad6(f), "0")
	}
	if neg {
		return "-$" + s
	}
	return "$" + s
}

// ParseUSD reads a dollar amount typed by a person: digits with at most
// six decimals, an optional leading "$", no exponent, no sign unless
// allowNegative. It returns micro-dollars.
func ParseUSD(s string, allowNegative bool) (int64, bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "$")
	s = strings.ReplaceAll(s, ",", "")
	neg := false
	if strings.HasPrefix(s, "-") {
		if !allowNegative {
			return 0, false
		}
		neg = true
		s = s[1:]
	}
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" && frac == "" || len(frac) > 6 || len(whole) > 10 {
		return 0, false
	}
	for _, part := range []string{whole, frac} {
		for _, r := range part {
			if r < '0' || r > '9' {
				return 0, false
			}
		}
	}
	var w, f int64
	if whole != "" {
		w, _ = strconv.ParseInt(whole, 10, 64)
	}
	if frac != "" {
		f, _ = strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
	}
	if w > MaxUSDInput {
		return 0, false
	}
	m := w*MicrosPerUSD + f
	if neg {
		m = -m
	}
	return m, true
}

func pad6(n int64) string {
	s := strconv.FormatInt(n, 10)
	return strings.Repeat("0", 6-len(s)) + s
}

func pad2(n int64) string {
	if n < 10 {
		return "0" + strconv.FormatInt(n, 10)
	}
	return strconv.FormatInt(n, 10)
}

func groupThousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	lead := len(s) % 3
	if lead > 0 {
		b.WriteString(s[:lead])
	}
	for i := lead; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}
