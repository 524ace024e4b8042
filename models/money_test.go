package models

import (
	"strings"
	"testing"
)

func TestParseUSD(t *testing.T) {
	cases := []struct {
		in     string
		neg    bool
		want   int64
		wantOK bool
	}{
		{"12", false, 12_000_000, true},
		{"12.5", false, 12_500_000, true},
		{"0.01", false, 10_000, true},
		{"$1,250.75", false, 1_250_750_000, true},
		{" 3 ", false, 3_000_000, true},
		{"0.000001", false, 1, true},
		{".5", false, 500_000, true},
		{"0.0000001", false, 0, false},
		{"-1", false, 0, false},
		{"-1", true, -1_000_000, true},
		{"-$3.50", true, -3_500_000, true},
		{"-$3.50", false, 0, false},
		{"1e3", false, 0, false},
		{"abc", false, 0, false},
		{"", false, 0, false},
		{".", false, 0, false},
		{"1.2.3", false, 0, false},
		{"+5", false, 0, false},
		{"99999999999999999999", false, 0, false},
		{"1000000001", false, 0, false},
		{"1000000000", false, 1_000_000_000 * 1_000_000, true},
		{"NaN", false, 0, false},
		{"１２", false, 0, false},
	}
	for _, tc := range cases {
		got, ok := ParseUSD(tc.in, tc.neg)
		if ok != tc.wantOK || got != tc.want {
			t.Errorf("ParseUSD(%q, %v) = %d, %v; want %d, %v", tc.in, tc.neg, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestFormatUSD(t *testing.T) {
	cases := []struct {
		in   int64
		want string
	}{
		{0, "$0.00"},
		{12_340_000, "$12.34"},
		{12_500_000, "$12.50"},
		{1_536, "$0.001536"},
		{246, "$0.000246"},
		{1, "$0.000001"},
		{10_000, "$0.01"},
		{1_234_567_890, "$1,234.56789"},
		{1_234_560_000, "$1,234.56"},
		{-2_500_000, "-$2.50"},
		{-246, "-$0.000246"},
		{1_000_000_000_000, "$1,000,000.00"},
		// A balance just under $15 never reads as $15.00, and a charge
		// below a cent never as $0.00 nor $0.01.
		{14_999_800, "$14.9998"},
		{14_999_999, "$14.999999"},
		{9_999, "$0.009999"},
		{5_000, "$0.005"},
		{100_000, "$0.10"},
		{120_000, "$0.12"},
		{123_000, "$0.123"},
	}
	for _, tc := range cases {
		if got := FormatUSD(tc.in); got != tc.want {
			t.Errorf("FormatUSD(%d) = %q, want %q", tc.in, got, tc.want)
		}
		if back, ok := ParseUSD(tc.want, true); !ok || back != tc.in {
			t.Errorf("ParseUSD(FormatUSD(%d) = %q) = %d, %v: the format loses money", tc.in, tc.want, back, ok)
		}
	}
}

// TestFormatUSDsOnePrecision checks that amounts read together share one
// precision, the most any of them needs, and that each still reads back
// as exactly itself.
func TestFormatUSDsOnePrecision(t *testing.T) {
	cases := []struct {
		in   []int64
		want []string
	}{
		{[]int64{24_576, 10_000, 14_576}, []string{"$0.024576", "$0.010000", "$0.014576"}},
		{[]int64{-246, 24_999_754}, []string{"-$0.000246", "$24.999754"}},
		{[]int64{25_000_000, 1_000_000}, []string{"$25.00", "$1.00"}},
		{[]int64{0, 1_500, 1_000_000}, []string{"$0.0000", "$0.0015", "$1.0000"}},
		{nil, []string{}},
	}
	for _, tc := range cases {
		got := FormatUSDs(tc.in...)
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("FormatUSDs(%v) = %q, want %q", tc.in, got, tc.want)
		}
		for i, s := range got {
			if back, _ := ParseUSD(s, true); back != tc.in[i] {
				t.Errorf("%q reads back as %d, not %d", s, back, tc.in[i])
			}
		}
	}
	if d := Decimals(10_000, 120_000); d != 2 {
		t.Errorf("Decimals of whole cents = %d, want 2", d)
	}
	if d := Decimals(10_000, 1); d != 6 {
		t.Errorf("Decimals with a micro-dollar = %d, want 6", d)
	}
}
