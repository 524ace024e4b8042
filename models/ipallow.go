package models

import (
	"fmt"
	"net/netip"
	"strings"
)

// MaxAllowedIPs bounds a key's IP allow list: long enough for any real
// deployment, short enough to check on every call.
const MaxAllowedIPs = 100

// maxIPEntryLen is the longest entry worth parsing (an IPv6 CIDR with
// room to spare); anything longer is junk and is cut in messages.
const maxIPEntryLen = 64

// ParseIPAllowList reads what a person typed as a key's allowed source
// IPs: IPv4 and IPv6 addresses and CIDRs, separated by commas, spaces or
// new lines. Each entry is normalised to a CIDR (203.0.113.7 becomes
// 203.0.113.7/32; an IPv4-mapped IPv6 address becomes its IPv4 form) and
// duplicates are dropped, keeping the first. An empty list means any
// source. A CIDR with host bits set is refused rather than silently
// widened or narrowed: the message names the network it probably meant.
func ParseIPAllowList(s string) ([]netip.Prefix, error) {
	entries := strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ';' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
	var out []netip.Prefix
	seen := map[netip.Prefix]bool{}
	for _, e := range entries {
		p, err := parseIPEntry(e)
		if err != nil {
			return nil, err
		}
		if seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
		if len(out) > MaxAllowedIPs {
			return nil, fmt.Errorf("At most %d addresses or ranges; use wider CIDR ranges to cover more.", MaxAllowedIPs)
		}
	}
	return out, nil
}

func parseIPEntry(e string) (netip.Prefix, error) {
	shown := e
	if len(shown) > maxIPEntryLen {
		shown = shown[:maxIPEntryLen] + "…"
	}
	if len(e) > maxIPEntryLen || strings.Contains(e, "%") {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR range.", shown)
	}
	addrPart, bitsPart, isCIDR := strings.Cut(e, "/")
	a, err := netip.ParseAddr(addrPart)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR range (like 203.0.113.7, 10.0.0.0/8 or 2001:db8::/32).", shown)
	}
	if !isCIDR {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(e)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q has an invalid prefix length /%s: use 0 to %d.", shown, bitsPart, a.BitLen())
	}
	if a.Is4In6() && p.Bits() >= 96 {
		// ::ffff:203.0.113.0/120 is 203.0.113.0/24 written the long way.
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set: did you mean %s (the whole range) or %s (one address)?",
			shown, p.Masked(), netip.PrefixFrom(p.Addr(), p.Addr().BitLen()))
	}
	return p, nil
}

// FormatIPAllowList is the stored form of an allow list: one CIDR a line.
func FormatIPAllowList(ps []netip.Prefix) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.String()
	}
	return strings.Join(parts, "\n")
}
