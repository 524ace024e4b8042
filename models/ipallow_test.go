package models

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseIPAllowList(t *testing.T) {
	cases := []struct {
		name, in string
		want     string // stored form, one CIDR a line
		err      string // part of the message; "" = valid
	}{
		{"empty means any", "", "", ""},
		{"only separators", " ,\n, ", "", ""},
		{"v4 address", "203.0.113.7", "203.0.113.7/32", ""},
		{"v4 cidr", "10.0.0.0/8", "10.0.0.0/8", ""},
		{"v6 address", "2001:db8::1", "2001:db8::1/128", ""},
		{"v6 cidr", "2001:DB8::/32", "2001:db8::/32", ""},
		{"commas and new lines", "203.0.113.7, 10.0.0.0/8\n2001:db8::/32\r\n192.0.2.1", "203.0.113.7/32\n10.0.0.0/8\n2001:db8::/32\n192.0.2.1/32", ""},
		{"duplicates dropped, first kept", "10.0.0.0/8, 203.0.113.7, 10.0.0.0/8, 203.0.113.7/32", "10.0.0.0/8\n203.0.113.7/32", ""},
		{"v4-mapped v6 address", "::ffff:203.0.113.7", "203.0.113.7/32", ""},
		{"v4-mapped v6 cidr", "::ffff:203.0.113.0/120", "203.0.113.0/24", ""},
		{"any v4", "0.0.0.0/0", "0.0.0.0/0", ""},
		{"host bits", "10.0.0.5/8", "", `"10.0.0.5/8" has host bits set: did you mean 10.0.0.0/8`},
		{"v6 host bits", "2001:db8::1/32", "", "did you mean 2001:db8::/32"},
		{"junk", "203.0.113.7, localhost", "", `"localhost" is not an IP address or CIDR range`},
		{"octet out of range", "256.1.1.1", "", `"256.1.1.1" is not an IP address`},
		{"bad prefix length", "10.0.0.0/33", "", "invalid prefix length /33: use 0 to 32"},
		{"prefix not a number", "10.0.0.0/x", "", "invalid prefix length"},
		{"zone", "fe80::1%eth0", "", "is not an IP address"},
		{"over-long entry", strings.Repeat("1", 500), "", "…\" is not an IP address"},
		{"html", "<script>", "", `"<script>" is not an IP address`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseIPAllowList(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := FormatIPAllowList(got); s != tc.want {
				t.Fatalf("got %q, want %q", s, tc.want)
			}
		})
	}
}

func TestParseIPAllowListLimit(t *testing.T) {
	var ips []string
	for i := range MaxAllowedIPs {
		ips = append(ips, netip.AddrFrom4([4]byte{10, 0, byte(i / 256), byte(i % 256)}).String())
	}
	if got, err := ParseIPAllowList(strings.Join(ips, ",")); err != nil || len(got) != MaxAllowedIPs {
		t.Fatalf("%d entries: %d, %v", MaxAllowedIPs, len(got), err)
	}
	// Duplicates do not count towards the limit.
	if _, err := ParseIPAllowList(strings.Join(append(ips, ips[0]), ",")); err != nil {
		t.Fatalf("a duplicate counted: %v", err)
	}
	_, err := ParseIPAllowList(strings.Join(append(ips, "192.0.2.1"), ","))
	if err == nil || !strings.Contains(err.Error(), "At most 100") {
		t.Fatalf("101 entries: %v", err)
	}
}

func TestAPIKeyAllowsIP(t *testing.T) {
	k := &APIKey{AllowedIPs: "203.0.113.7/32\n10.0.0.0/8\n2001:db8::/32"}
	cases := map[string]bool{
		"203.0.113.7":        true,
		"203.0.113.8":        false,
		"10.200.1.1":         true,
		"11.0.0.1":           false,
		"::ffff:203.0.113.7": true, // an IPv4 client on a dual-stack socket
		"::ffff:10.1.2.3":    true,
		"2001:db8::42":       true,
		"2001:db9::1":        false,
		"fe80::1%eth0":       false,
	}
	for ip, want := range cases {
		if got := k.AllowsIP(netip.MustParseAddr(ip)); got != want {
			t.Errorf("AllowsIP(%s) = %v, want %v", ip, got, want)
		}
	}
	anyKey := &APIKey{}
	if !anyKey.AllowsIP(netip.MustParseAddr("198.51.100.1")) || anyKey.IPPrefixes() != nil {
		t.Error("an empty allow list must allow any source")
	}
	v6 := &APIKey{AllowedIPs: "::/0"}
	if v6.AllowsIP(netip.MustParseAddr("::ffff:1.2.3.4")) {
		t.Error("::/0 matched an IPv4 client given as IPv4-mapped IPv6")
	}
}
