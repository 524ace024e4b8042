package handlers_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"ttconsole/handlers"
	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// reap runs the hold reaper every interval until the test ends, as every
// instance's reaper does.
func reap(t *testing.T, s *models.Store, every time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			s.ExpireHolds(ctx, time.Now())
			select {
			case <-ctx.Done():
			case <-time.After(every):
			}
		}
	}()
}

// A stream that runs three times as long as the hold TTL, with the reaper
// running all along, keeps its hold and is charged every token it
// delivered: a hold never ends while its instance serves the call.
func TestStreamLongerThanHoldTTLIsChargedInFull(t *testing.T) {
	noLeaks(t)
	p := newPlatform(t, testenv.Options{Adjust: func(a *handlers.App) { a.HoldTTL = 600 * time.Millisecond }})
	reap(t, p.srv.Store, 50*time.Millisecond)

	res := p.openStream(context.Background(), streamBody(100, map[string]string{"sim_output_tokens": "30", "sim_interval_ms": "60"}))
	evs := events(res, -1)
	res.Body.Close()
	if len(evs) != 32 || evs[len(evs)-1] != "[DONE]" {
		t.Fatalf("%d events, last %q: want 30 tokens, the finish chunk and [DONE]", len(evs), evs[len(evs)-1])
	}
	row := p.settled(res.Header.Get("X-TT-Request-ID"))
	want := chatCost(t, 7, 30)
	if row.BillingOutcome != models.OutcomeCharged || row.HoldStatus != models.HoldCaptured || row.CompletionTokens != 30 || row.ChargedMicros != want {
		t.Fatalf("row outcome %s, %d tokens, charged %d: want charged %d for 30 tokens (%s)",
			row.BillingOutcome, row.CompletionTokens, row.ChargedMicros, want, row.OutcomeDetail)
	}
	if w := p.wallet(p.account); w.BalanceMicros != 10*models.MicrosPerUSD-want || w.HeldMicros != 0 {
		t.Fatalf("wallet %+v after a charge of %d", w, want)
	}
	p.invariants(p.account)
}

// When the hold of a live stream has ended anyway (here a reaper whose
// clock runs an hour ahead), the stream stops at the next renewal, tells
// the client why, and is charged for what it delivered: from the balance
// as far as it goes, the rest recorded as a debt that the next credit pays.
func TestStreamWhoseHoldEndedIsCutAndChargedLate(t *testing.T) {
	noLeaks(t)
	p := newPlatform(t, testenv.Options{Adjust: func(a *handlers.App) { a.HoldTTL = 2 * time.Second }})
	ctx := context.Background()
	res := p.openStream(ctx, streamBody(1000, map[string]string{"sim_output_tokens": "1000", "sim_interval_ms": "20"}))
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	read := 0
	for read < 5 && sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			read++
		}
	}
	if n, err := p.srv.Store.ExpireHolds(ctx, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("expire holds: %d, %v", n, err)
	}
	// Meanwhile the wallet is spent down to 1 µ$ (as other calls would).
	w := p.wallet(p.account)
	if _, err := p.srv.Store.Credit(ctx, p.account, -(w.Available() - 1), models.LedgerAdjustment, "spent elsewhere", models.LedgerRef{}); err != nil {
		t.Fatal(err)
	}
	var last string
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			last = d
		}
	}
	if !strings.Contains(last, `"service_unavailable"`) || !strings.Contains(last, "billing hold") {
		t.Fatalf("last event %q: want the reason the stream stopped", last)
	}
	row := p.settled(res.Header.Get("X-TT-Request-ID"))
	cost := chatCost(t, 7, row.CompletionTokens)
	if row.BillingOutcome != models.OutcomeChargedPartial || row.CompletionTokens < 5 || row.CompletionTokens >= 1000 ||
		row.ChargedMicros != cost || !strings.Contains(row.OutcomeDetail, "hold had expired") ||
		!strings.Contains(row.OutcomeDetail, "outstanding") {
		t.Fatalf("row %s, %d tokens, charged %d (want %d), detail %q", row.BillingOutcome, row.CompletionTokens,
			row.ChargedMicros, cost, row.OutcomeDetail)
	}
	w = p.wallet(p.account)
	if w.BalanceMicros != 0 || w.HeldMicros != 0 || w.DebtMicros != cost-1 {
		t.Fatalf("wallet %+v: want 1 µ$ taken and a debt of %d", w, cost-1)
	}
	if err := p.srv.Store.LedgerInvariant(ctx, p.account); err != nil {
		t.Fatal(err)
	}
	// The customer sees it on Billing and through the API.
	b := newBrowser(t, p.srv)
	if res, _ := b.login("owner@example.com", "long enough password"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", res.StatusCode)
	}
	_, page := b.get("/billing")
	// Billing shows its figures at one precision, so the amount is read,
	// not compared as text.
	got := testenv.Doc(t, page).Find(`[data-testid="billing-debt"]`).Text()
	if m, ok := models.ParseUSD(got, false); !ok || m != cost-1 {
		t.Fatalf("Billing shows outstanding %q, want %s", got, models.FormatUSD(cost-1))
	}
	if r := p.do("GET", "/v1/account", p.secret, ""); !strings.Contains(r.body, fmt.Sprintf(`"debt_micros":%d`, cost-1)) {
		t.Fatalf("/v1/account: %s", r.body)
	}
	// The debt counts against new calls until a credit pays it.
	if r := p.chat(p.secret, 10, nil); r.res.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("a call while in debt: %d %s", r.res.StatusCode, r.body)
	}
	if _, err := p.srv.Store.Credit(ctx, p.account, models.MicrosPerUSD, models.LedgerAdjustment, "recharge", models.LedgerRef{}); err != nil {
		t.Fatal(err)
	}
	w = p.wallet(p.account)
	if w.DebtMicros != 0 || w.BalanceMicros != models.MicrosPerUSD-(cost-1) {
		t.Fatalf("after a $1 credit: %+v, want the debt of %d paid", w, cost-1)
	}
	p.invariants(p.account)
}

// An instance that can no longer renew its holds (it lost the database,
// or its renewals stopped) cuts its streams before their holds can expire.
func TestStreamStopsBeforeAnUnrenewedHoldExpires(t *testing.T) {
	noLeaks(t)
	p := newPlatform(t, testenv.Options{Adjust: func(a *handlers.App) { a.HoldTTL = 2 * time.Second }})
	p.srv.App.Close() // renewals stop; the call's lease runs down
	res := p.openStream(context.Background(), streamBody(1000, map[string]string{"sim_output_tokens": "1000", "sim_interval_ms": "20"}))
	start := time.Now()
	evs := events(res, -1)
	res.Body.Close()
	took := time.Since(start)
	if took > 2*time.Second || len(evs) == 0 || !strings.Contains(evs[len(evs)-1], "billing hold") {
		t.Fatalf("stream ran %s (hold TTL 2s), last event %q", took, evs[len(evs)-1])
	}
	row := p.settled(res.Header.Get("X-TT-Request-ID"))
	if row.BillingOutcome != models.OutcomeChargedPartial || row.HoldStatus != models.HoldCaptured ||
		row.ChargedMicros != chatCost(t, 7, row.CompletionTokens) {
		t.Fatalf("row %+v", row)
	}
	p.invariants(p.account)
}

// The holds of an instance that is gone (no one renews them) still expire,
// while the live calls of the instance running the reaper keep theirs.
func TestReaperEndsOnlyHoldsNoInstanceKeeps(t *testing.T) {
	noLeaks(t)
	p := newPlatform(t, testenv.Options{Adjust: func(a *handlers.App) { a.HoldTTL = 600 * time.Millisecond }})
	ctx := context.Background()
	orphan := &models.Request{ID: p.srv.Store.NewRequestID(), AccountID: &p.account, KeyID: &p.key.ID, Method: "POST",
		Path: "/v1/chat/completions", Status: 200, Stream: true, CreatedAt: time.Now().UTC()}
	if _, err := p.srv.Store.StartCall(ctx, orphan, p.key.ID, nil, 1000, 600*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	reap(t, p.srv.Store, 50*time.Millisecond)
	res := p.openStream(ctx, streamBody(100, map[string]string{"sim_output_tokens": "25", "sim_interval_ms": "60"}))
	evs := events(res, -1)
	res.Body.Close()
	if evs[len(evs)-1] != "[DONE]" {
		t.Fatalf("live stream ended with %q", evs[len(evs)-1])
	}
	if row := p.settled(res.Header.Get("X-TT-Request-ID")); row.BillingOutcome != models.OutcomeCharged || row.HoldStatus != models.HoldCaptured {
		t.Fatalf("live stream: %s, hold %s", row.BillingOutcome, row.HoldStatus)
	}
	if row := p.row(p.account, orphan.ID); row.BillingOutcome != models.OutcomeNotChargedExpired || row.HoldStatus != models.HoldExpired {
		t.Fatalf("orphaned hold: %s %s", row.BillingOutcome, row.HoldStatus)
	}
	p.invariants(p.account)
}

// A stream stops at TT_STREAM_MAX, tells the client, and is charged for
// the tokens it delivered.
func TestStreamStopsAtItsMaximumDuration(t *testing.T) {
	noLeaks(t)
	p := newPlatform(t, testenv.Options{Adjust: func(a *handlers.App) { a.StreamMax = 500 * time.Millisecond }})
	res := p.openStream(context.Background(), streamBody(1000, map[string]string{"sim_output_tokens": "1000", "sim_interval_ms": "20"}))
	evs := events(res, -1)
	res.Body.Close()
	if len(evs) == 0 || !strings.Contains(evs[len(evs)-1], `"upstream_timeout"`) || !strings.Contains(evs[len(evs)-1], "maximum duration") {
		t.Fatalf("%d events, last %q", len(evs), evs[len(evs)-1])
	}
	row := p.settled(res.Header.Get("X-TT-Request-ID"))
	if row.BillingOutcome != models.OutcomeChargedPartial || row.CompletionTokens == 0 || row.CompletionTokens >= 1000 ||
		row.ChargedMicros != chatCost(t, 7, row.CompletionTokens) ||
		!strings.Contains(row.OutcomeDetail, "maximum duration of 500ms") {
		t.Fatalf("row %s %d tokens charged %d: %q", row.BillingOutcome, row.CompletionTokens, row.ChargedMicros, row.OutcomeDetail)
	}
	p.invariants(p.account)
}

// A client that stops reading is cut once a write has waited
// StreamWriteTimeout, and charged for what it was sent.
func TestStreamSlowReaderIsCutAndCharged(t *testing.T) {
	noLeaks(t)
	p := newPlatform(t, testenv.Options{Adjust: func(a *handlers.App) { a.StreamWriteTimeout = 300 * time.Millisecond }})
	// The gateway's sockets send little at a time, as over a slow network.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(p.srv.Echo)
	srv.Listener = smallSendBuffers{ln}
	srv.Start()
	defer srv.Close()

	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := streamBody(16000, map[string]string{"sim_output_tokens": "16000"})
	fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		p.secret, len(body), body)
	br := bufio.NewReaderSize(conn, 512)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := res.Header.Get("X-TT-Request-ID")
	// Read nothing more.
	deadline := time.Now().Add(10 * time.Second)
	var row *models.Request
	for {
		row = p.row(p.account, id)
		if row.BillingOutcome != models.OutcomePending || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if row.BillingOutcome != models.OutcomeChargedPartial || !strings.HasPrefix(row.OutcomeDetail, "client read nothing for 300ms") ||
		row.CompletionTokens == 0 || row.CompletionTokens >= 16000 ||
		row.ChargedMicros != chatCost(t, row.PromptTokens, row.CompletionTokens) {
		t.Fatalf("row %s, %d tokens, charged %d: %q", row.BillingOutcome, row.CompletionTokens, row.ChargedMicros, row.OutcomeDetail)
	}
	p.invariants(p.account)
}

type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}
