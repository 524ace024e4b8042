package models

import "testing"

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
	cases := map[int64]string{
		0:                 "$0.00",
		12_340_000:        "$12.34",
		1_536:             "$0.001536",
		1:                 "$0.000001",
		10_000:            "$0.01",
		1_234_567_890:     "$1,234.57",
		-2_500_000:        "-$2.50",
		1_000_000_000_000: "$1,000,000.00",
	}
	for in, want := range cases {
		if got := FormatUSD(in); got != want {
			t.Errorf("FormatUSD(%d) = %q, want %q", in, got, want)
		}
	}
	if got := FormatUSDExact(12_500_000); got != "$12.5" {
		t.Errorf("FormatUSDExact = %q", got)
	}
}
