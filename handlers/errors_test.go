package handlers_test

import (
	"testing"
	"time"

	"ttconsole/handlers"
	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// TestErrorsWithoutDetailSayTheCataloguesWords covers an error whose status
// and words come from the catalogue rather than from the code that failed:
// an upstream that never answers. It answers in the platform's shape, and
// the caller's log shows the same type and status, not charged.
func TestErrorsWithoutDetailSayTheCataloguesWords(t *testing.T) {
	p := newPlatform(t, testenv.Options{Adjust: func(a *handlers.App) { a.UpstreamTimeout = 300 * time.Millisecond }})
	before := p.wallet(p.account)
	cases := []struct {
		name, method, path, body string
		status                   int
		typ, msg                 string
	}{
		{"upstream silent past the timeout", "POST", "/v1/chat/completions", chatBody("tt-chat-small", 10, map[string]string{"sim_delay_ms": "3000"}),
			504, "upstream_timeout", "The model server did not answer in time. Not charged; retry with backoff."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := p.do(tc.method, tc.path, p.secret, tc.body)
			if r.res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", r.res.StatusCode, tc.status, r.body)
			}
			if typ, msg := errorOf(t, r); typ != tc.typ || msg != tc.msg {
				t.Fatalf("error %s %q, want %s %q", typ, msg, tc.typ, tc.msg)
			}
			row := p.row(p.account, r.id())
			if row.Status != tc.status || row.ErrorType != tc.typ || row.ChargedMicros != 0 || row.BillingOutcome == models.OutcomeCharged {
				t.Fatalf("logged as %d %s, charged %d (%s)", row.Status, row.ErrorType, row.ChargedMicros, row.BillingOutcome)
			}
		})
	}
	if after := p.wallet(p.account); after.BalanceMicros != before.BalanceMicros || after.HeldMicros != 0 {
		t.Fatalf("wallet moved: before %+v after %+v", before, after)
	}
}
