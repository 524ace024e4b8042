package models

import (
	"strings"
	"testing"
	"time"
)

var testCatalogue = []CatalogModel{
	{ID: "tt-chat-small", Sort: 10}, {ID: "tt-chat-large", Sort: 20}, {ID: "tt-embed-1", Sort: 30}, {ID: "tt-video-1", Sort: 40},
}

// The monthly limit field, with the inputs people really type.
func TestParseMonthlyLimit(t *testing.T) {
	cases := []struct {
		in   string
		want int64 // micro-dollars; 0 = no limit
		msg  string
	}{
		{"", 0, ""},
		{"  ", 0, ""},
		{"12", 12_000_000, ""},
		{"12.5", 12_500_000, ""},
		{"0.01", 10_000, ""},
		{"$1,000", 1_000_000_000, ""},
		{"0", 0, "above $0"},
		{"0.00", 0, "above $0"},
		{"-1", 0, "cannot be negative"},
		{"1e3", 0, "plain digits"},
		{"abc", 0, "Enter an amount in dollars"},
		{"12.3.4", 0, "Enter an amount in dollars"},
		{"0.0000001", 0, "six decimal places"},
		{"99999999999999999999", 0, "The largest limit is $1,000,000,000.00"},
		{"1000000001", 0, "The largest limit"},
		{"1000000000", 1_000_000_000 * MicrosPerUSD, ""},
	}
	for _, tc := range cases {
		got, msg := parseMonthlyLimit(tc.in)
		if tc.msg != "" {
			if got != nil || !strings.Contains(msg, tc.msg) {
				t.Errorf("%q: got %v %q, want message %q", tc.in, got, msg, tc.msg)
			}
			continue
		}
		if msg != "" || (tc.want == 0) != (got == nil) || got != nil && *got != tc.want {
			t.Errorf("%q: got %v %q, want %d", tc.in, got, msg, tc.want)
		}
		if got != nil {
			if back, _ := parseMonthlyLimit(LimitInput(got)); back == nil || *back != *got {
				t.Errorf("%q: LimitInput %q does not read back", tc.in, LimitInput(got))
			}
		}
	}
}

func TestParseKeyInput(t *testing.T) {
	now := time.Date(2025, 12, 5, 10, 0, 0, 0, time.UTC)
	valid := KeyInput{Name: "production", RPM: "60"}
	cases := []struct {
		name  string
		edit  func(*KeyInput)
		rules func(*keyRules)
		field string // "" = valid
		msg   string
		check func(*testing.T, keySettings)
	}{
		{name: "defaults", edit: func(in *KeyInput) { in.RPM = "" }, check: func(t *testing.T, s keySettings) {
			if s.RPM != 60 || s.Models != "" || s.AllowedIPs != "" || s.Limit != nil || s.ExpiresAt != nil {
				t.Errorf("defaults: %+v", s)
			}
		}},
		{name: "name trimmed", edit: func(in *KeyInput) { in.Name = "  ci runner  " }, check: func(t *testing.T, s keySettings) {
			if s.Name != "ci runner" {
				t.Errorf("name %q", s.Name)
			}
		}},
		{name: "no name", edit: func(in *KeyInput) { in.Name = "   " }, field: "name", msg: "Give the key a name"},
		{name: "long name", edit: func(in *KeyInput) { in.Name = strings.Repeat("é", 101) }, field: "name", msg: "at most 100"},
		{name: "control character", edit: func(in *KeyInput) { in.Name = "a\x00b" }, field: "name", msg: "control characters"},
		{name: "models in catalogue order, deduplicated", edit: func(in *KeyInput) {
			in.Models = []string{"tt-embed-1", "tt-chat-small, tt-embed-1"}
		}, check: func(t *testing.T, s keySettings) {
			if s.Models != "tt-chat-small,tt-embed-1" {
				t.Errorf("models %q", s.Models)
			}
		}},
		{name: "unknown model", edit: func(in *KeyInput) { in.Models = []string{"tt-chat-small,gpt-4"} }, field: "models", msg: `"gpt-4" is not a model`},
		{name: "bad ip", edit: func(in *KeyInput) { in.AllowedIPs = "10.0.0.1/8" }, field: "allowed_ips", msg: "host bits"},
		{name: "ips normalised", edit: func(in *KeyInput) { in.AllowedIPs = "203.0.113.7,10.0.0.0/8" }, check: func(t *testing.T, s keySettings) {
			if s.AllowedIPs != "203.0.113.7/32\n10.0.0.0/8" {
				t.Errorf("ips %q", s.AllowedIPs)
			}
		}},
		{name: "limit", edit: func(in *KeyInput) { in.MonthlyLimitUSD = "25" }, check: func(t *testing.T, s keySettings) {
			if s.Limit == nil || *s.Limit != 25_000_000 {
				t.Errorf("limit %v", s.Limit)
			}
		}},
		{name: "negative limit", edit: func(in *KeyInput) { in.MonthlyLimitUSD = "-5" }, field: "monthly_limit_usd", msg: "negative"},
		{name: "rpm zero", edit: func(in *KeyInput) { in.RPM = "0" }, field: "rpm", msg: "from 1 to 600"},
		{name: "rpm above the account's maximum", edit: func(in *KeyInput) { in.RPM = "601" }, field: "rpm", msg: "your account's maximum"},
		{name: "rpm at the maximum", edit: func(in *KeyInput) { in.RPM = "600" }},
		{name: "rpm not a number", edit: func(in *KeyInput) { in.RPM = "fast" }, field: "rpm", msg: "whole number"},
		{name: "rpm huge", edit: func(in *KeyInput) { in.RPM = "99999999999999999999999" }, field: "rpm", msg: "whole number"},
		{name: "operator above the maximum", edit: func(in *KeyInput) { in.RPM = "5000" }, rules: func(r *keyRules) { r.operator = true }},
		{name: "operator bounded too", edit: func(in *KeyInput) { in.RPM = "5000000" }, rules: func(r *keyRules) { r.operator = true }, field: "rpm", msg: "1 to 1000000"},
		{name: "kept rpm above the maximum", edit: func(in *KeyInput) { in.RPM = "5000" }, rules: func(r *keyRules) { r.current = &APIKey{RPM: 5000} }},
		{name: "empty rpm on edit", edit: func(in *KeyInput) { in.RPM = "" }, rules: func(r *keyRules) { r.current = &APIKey{RPM: 60} }, field: "rpm", msg: "whole number"},
		{name: "expiry", edit: func(in *KeyInput) { in.ExpiresOn = "2026-01-31" }, check: func(t *testing.T, s keySettings) {
			if s.ExpiresAt == nil || !s.ExpiresAt.Equal(time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("expiry %v", s.ExpiresAt)
			}
		}},
		{name: "expiry in the past", edit: func(in *KeyInput) { in.ExpiresOn = "2025-12-05" }, field: "expires_at", msg: "in the future"},
		{name: "expiry not a date", edit: func(in *KeyInput) { in.ExpiresOn = "next week" }, field: "expires_at", msg: "YYYY-MM-DD"},
		{name: "past expiry kept on edit", edit: func(in *KeyInput) { in.ExpiresOn = "2025-11-01" }, rules: func(r *keyRules) {
			past := time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)
			r.current = &APIKey{RPM: 60, ExpiresAt: &past}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := valid
			if tc.edit != nil {
				tc.edit(&in)
			}
			r := keyRules{catalogue: testCatalogue, maxRPM: 600, now: now}
			if tc.rules != nil {
				tc.rules(&r)
			}
			got, err := parseKeyInput(in, r)
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tc.check != nil {
					tc.check(t, got)
				}
				return
			}
			e, ok := err.(*Error)
			if !ok || e.Code != EINVALID || !strings.Contains(e.Fields[tc.field], tc.msg) {
				t.Fatalf("error %v, want %s: %q", err, tc.field, tc.msg)
			}
			if len(e.Fields) != 1 {
				t.Errorf("other fields flagged too: %v", e.Fields)
			}
		})
	}
}
