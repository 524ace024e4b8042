package models

import (
	"strings"
	"testing"
	"time"
)

func TestNewKeySecret(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		s, err := newKeySecret()
		if err != nil {
			t.Fatal(err)
		}
		body, ok := strings.CutPrefix(s, "sk-tt-")
		if !ok || len(body) != 43 || seen[s] {
			t.Fatalf("secret %q: want sk-tt- and 43 base62 characters, all different", s)
		}
		for _, r := range body {
			if !('0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
				t.Fatalf("secret %q has %q, not base62", s, r)
			}
		}
		seen[s] = true
	}
}

func TestAPIKeyScopeAndState(t *testing.T) {
	all := &APIKey{Status: KeyActive}
	if all.ModelList() != nil || !all.AllowsModel("tt-video-1") {
		t.Error("an empty scope must allow every model")
	}
	some := &APIKey{Models: "tt-chat-small,tt-embed-1"}
	if !some.AllowsModel("tt-embed-1") || some.AllowsModel("tt-chat-large") || some.AllowsModel("tt-chat") {
		t.Errorf("scope %q: wrong answers", some.Models)
	}

	now := time.Date(2025, 12, 5, 10, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Second), now.Add(time.Hour)
	cases := []struct {
		k     APIKey
		state string
		err   string
	}{
		{APIKey{Status: KeyActive}, "active", ""},
		{APIKey{Status: KeyActive, ExpiresAt: &future}, "active", ""},
		{APIKey{Status: KeyActive, ExpiresAt: &past}, "expired", "expired on 5 Dec 2025"},
		{APIKey{Status: KeyActive, ExpiresAt: &now}, "expired", "expired"},
		{APIKey{Status: KeyDisabled}, "disabled", "is disabled"},
		{APIKey{Status: KeyRevoked, ExpiresAt: &past}, "revoked", "has been revoked"},
	}
	for _, tc := range cases {
		if got := tc.k.State(now); got != tc.state {
			t.Errorf("%+v: state %q, want %q", tc.k, got, tc.state)
		}
		err := tc.k.Usable(now)
		if (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%+v: Usable = %v, want %q", tc.k, err, tc.err)
		}
		if err != nil && ErrorCode(err) != EUNAUTHORIZED {
			t.Errorf("Usable error code %q, want unauthorized", ErrorCode(err))
		}
	}
}

func TestProjectLimitReached(t *testing.T) {
	day := func(d, h int) time.Time { return time.Date(2025, 12, d, h, 0, 0, 0, time.UTC) }
	cases := []struct {
		name        string
		used, limit int64
		now         time.Time
		want        time.Time
		ok          bool
	}{
		{"nothing used", 0, 10_000_000, day(10, 0), time.Time{}, false},
		{"half by the 5th: reached on the 9th", 5_000_000, 10_000_000, day(5, 0), day(9, 0), true},
		{"a tenth by the 4th: reached on the 31st", 1_000_000, 10_000_000, day(4, 0), day(31, 0), true},
		{"a twentieth by the 4th: not this month", 500_000, 10_000_000, day(4, 0), time.Time{}, false},
		{"over the limit: now", 12_000_000, 10_000_000, day(20, 0), day(20, 0), true},
		{"the first instant of the month", 1, 10, day(1, 0), time.Time{}, false},
	}
	for _, tc := range cases {
		at, ok := ProjectLimitReached(tc.used, tc.limit, tc.now)
		if ok != tc.ok || !at.Equal(tc.want) {
			t.Errorf("%s: got %v %v, want %v %v", tc.name, at, ok, tc.want, tc.ok)
		}
	}
	if r := MonthlyReset(day(31, 23)); !r.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("reset after 31 Dec: %v", r)
	}
}
