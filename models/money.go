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

// FormatUSD is the console's one money format, for pages, messages and
// the command line alike. An amount of whole cents shows at cents
// ("$12.34", "$1,250.00"); any other shows every digit it needs, down to
// the micro-dollar ("$14.9998", "$0.000246"). It never rounds: a balance
// never looks larger than it is and a charge below a cent never reads as
// $0.00. Never scientific notation.
func FormatUSD(m int64) string { return formatUSD(m, Decimals(m)) }

// FormatUSDs formats amounts a person reads together — one sentence, one
// column of a list, a balance beside the amount that changed it — at one
// precision: the most any of them needs. "$0.024576 … $0.010000" rather
// than "$0.024576 … $0.01".
func FormatUSDs(ms ...int64) []string {
	d := Decimals(ms...)
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = formatUSD(m, d)
	}
	return out
}

// FormatUSDAt shows m with at least decimals decimals (2 to 6), and more
// when m needs them: a column formats each row at the column's precision.
func FormatUSDAt(m int64, decimals int) string {
	return formatUSD(m, min(max(decimals, Decimals(m)), 6))
}

// Decimals is how many decimals the amounts need to show exactly: 2 when
// each is a whole number of cents, up to 6 (a micro-dollar).
func Decimals(ms ...int64) int {
	d := 2
	for _, m := range ms {
		if m < 0 {
			m = -m
		}
		f := m % MicrosPerUSD
		for n := 6; n > d; n-- {
			if f%10 != 0 {
				d = n
				break
			}
			f /= 10
		}
	}
	return d
}

// formatUSD shows m with d decimals (2 to 6), thousands grouped.
func formatUSD(m int64, d int) string {
	neg := m < 0
	if neg {
		m = -m
	}
	s := groupThousands(m/MicrosPerUSD) + "." + pad6(m % MicrosPerUSD)[:d]
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
	if strings.HasPrefix(s, "-$") { // as FormatUSD writes a negative amount
		s = "-" + s[2:]
	}
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
