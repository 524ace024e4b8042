package handlers_test

import (
	"log/slog"
	"net/http"
	"strings"
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

// TestUpstreamFailureIsNotAnInternalError: a model server's 503 is passed
// on as the catalogue's 503, and the operator's log says so at warning
// level with the request id, in its access line too; ERROR is kept for
// the product's own failures, so that it can be alerted on.
func TestUpstreamFailureIsNotAnInternalError(t *testing.T) {
	logs := &lockedBuffer{}
	p := newPlatform(t, testenv.Options{Adjust: func(a *handlers.App) {
		a.Log = slog.New(slog.NewJSONHandler(logs, nil))
	}})
	r := p.chat(p.secret, 16, map[string]string{"sim_status": "503"})
	if r.res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503: %s", r.res.StatusCode, r.body)
	}
	var mine []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, r.id()) {
			mine = append(mine, line)
		}
	}
	all := strings.Join(mine, "\n")
	if strings.Contains(all, `"msg":"internal error"`) {
		t.Errorf("the upstream's 503 is logged as an internal error:\n%s", all)
	}
	if !strings.Contains(all, `"level":"WARN","msg":"answered with an error"`) || !strings.Contains(all, "503") {
		t.Errorf("no warning names the failed call:\n%s", all)
	}
	if !strings.Contains(all, `"level":"WARN","msg":"request"`) {
		t.Errorf("the call's access line is not a warning:\n%s", all)
	}
	if strings.Contains(all, `"level":"ERROR"`) {
		t.Errorf("the upstream's 503 is logged at ERROR level:\n%s", all)
	}
}
