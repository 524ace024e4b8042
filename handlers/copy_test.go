package handlers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// TestNoRawCodeShownAlone loads every console page of an account with
// payments of each end, requests of each outcome, ledger entries and keys
// of each state, and fails where a cell, badge or choice says nothing but
// a code: "expired", "charge", "not_charged_rejected", "revoked".
func TestNoRawCodeShownAlone(t *testing.T) {
	srv := testenv.NewServer(t)
	p := newPayer(t, srv, "ada@example.com")
	paid, sid := p.checkout("25")
	p.testAction(sid, "pay")
	failed, fsid := p.checkout("10")
	p.testAction(fsid, "fail")
	cancelled, csid := p.checkout("10")
	p.get(p.testAction(csid, "cancel").Header.Get("Location"))
	pending, _ := p.checkout("10")

	ctx := context.Background()
	key, _, err := srv.Store.CreateAPIKey(ctx, p.account, models.AdminCLI, models.KeyInput{Name: "main", RPM: "1"})
	if err != nil {
		t.Fatal(err)
	}
	gone, _, err := srv.Store.CreateAPIKey(ctx, p.account, models.AdminCLI, models.KeyInput{Name: "old"})
	if err != nil {
		t.Fatal(err)
	}
	p.post("/keys/"+gone.ID, "/keys/"+gone.ID+"/revoke", nil)
	now := time.Now().UTC()
	var last *models.Request
	for i, o := range models.Outcomes {
		r := models.Request{AccountID: &p.account, KeyID: &key.ID, Status: 200, Model: "tt-chat-small", BillingOutcome: o,
			RatelimitLimit: ptr(1), RatelimitRemaining: ptr(0), RatelimitReset: ptr(now.Unix())}
		if o == models.OutcomeNotChargedRejected {
			r.Status, r.ErrorType, r.ErrorMessage = 429, "rate_limited", "slow down"
		}
		if o == models.OutcomeCharged {
			r.ChargedMicros, r.HoldMicros = 246, 1_536
		}
		last = rqLog(t, srv, r, now.Add(-time.Duration(i)*time.Minute))
		if o == models.OutcomeCharged {
			if _, err := srv.Store.Credit(ctx, p.account, -246, models.LedgerCharge, "API call "+last.ID, models.LedgerRef{RequestID: last.ID}); err != nil {
				t.Fatal(err)
			}
		}
	}

	codes := map[string]bool{}
	for _, c := range models.Outcomes {
		codes[c] = true
	}
	for _, c := range []string{models.PaymentPending, models.PaymentPaid, models.PaymentFailed, models.PaymentExpired, models.PaymentCancelled,
		models.LedgerRecharge, models.LedgerCharge, models.LedgerAdjustment, models.LedgerRefund,
		"active", "disabled", "revoked", "test", "stripe", "rate_limited", "billing_shortfall", "ip_not_allowed",
		models.EventCheckoutCompleted, models.EventAsyncPaymentFailed, models.EventCredited, models.EventMarkedFailed} {
		codes[c] = true
	}
	paths := []string{"/", "/requests", "/keys", "/keys/" + key.ID, "/keys/" + gone.ID, "/billing",
		"/billing/payments/" + paid.ID, "/billing/payments/" + failed.ID, "/billing/payments/" + cancelled.ID,
		"/billing/payments/" + pending.ID}
	for _, o := range models.Outcomes {
		paths = append(paths, "/requests?outcome="+o)
	}
	paths = append(paths, "/requests/"+last.ID)
	for _, path := range paths {
		_, page := p.get(path)
		testenv.Doc(t, page).Find("main td, main dd, main .badge, main option, main li strong").Each(func(_ int, s *goquery.Selection) {
			if text := strings.TrimSpace(s.Text()); codes[text] {
				t.Errorf("%s shows the code %q alone in a <%s>", path, text, goquery.NodeName(s))
			}
		})
	}
	// The rate limit in words, singular when it is one.
	_, page := p.get("/keys/" + key.ID)
	if !strings.Contains(page, "1 request per minute") || strings.Contains(page, "1 requests per minute") {
		t.Error("the key's page does not say 1 request per minute")
	}
	_, page = p.get("/requests/" + last.ID)
	if !strings.Contains(page, "1 request per minute") {
		t.Error("a request's rate-limit headers do not say 1 request per minute")
	}
}
