package handlers_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// overviewAlerts returns the kinds of the alerts Overview shows.
func (p *payer) overviewAlerts() []string {
	p.t.Helper()
	_, page := p.get("/")
	var kinds []string
	testenv.Doc(p.t, page).Find(`[data-alert]`).Each(func(_ int, s *goquery.Selection) {
		k, _ := s.Attr("data-alert")
		kinds = append(kinds, k)
	})
	return kinds
}

func count(kinds []string, kind string) int {
	n := 0
	for _, k := range kinds {
		if k == kind {
			n++
		}
	}
	return n
}

// TestAutoTopupDeclinedBacksOffAndPauses: a declined card records why, on
// Billing, on Overview and by mail; the same crossing is not tried again;
// the next crossing waits out the backoff; after three declines in a row
// auto top-up pauses itself, says so, and starts nothing until the
// settings are saved again.
func TestAutoTopupDeclinedBacksOffAndPauses(t *testing.T) {
	box := &mailbox{}
	srv := testenv.NewServer(t, topupOptions(box))
	p := topupAccount(t, srv, "ada@example.com", "9995", 6, "100")

	p.credit(-1.50) // $4.50: crossed
	p.round()
	tops := p.topups()
	if len(tops) != 1 || tops[0].Status != models.PaymentFailed || tops[0].FailureCode != "insufficient_funds" ||
		tops[0].Detail != "Declined: insufficient funds (insufficient_funds)." {
		t.Fatalf("top-ups %+v, want one failed for insufficient funds", tops)
	}
	_, text := p.billingDoc()
	if got := text(`[data-testid=topup-failure]`); !strings.Contains(got, "Declined: insufficient funds") {
		t.Fatalf("Billing says %q about the failed top-up", got)
	}
	if count(p.overviewAlerts(), models.AlertTopupDeclined) != 1 {
		t.Fatal("Overview does not show the declined top-up")
	}
	if ms := box.with("Auto top-up of $20.00 was declined"); len(ms) != 1 || ms[0].to != "ada@example.com" ||
		!strings.Contains(ms[0].text, "insufficient funds") {
		t.Fatalf("decline mails: %+v", ms)
	}
	// The same crossing, deeper: not tried again.
	p.credit(-0.50)
	p.round()
	p.round()
	if n := len(p.topups()); n != 1 {
		t.Fatalf("%d top-ups after the same crossing went deeper, want still 1", n)
	}

	// A new crossing within the backoff waits.
	p.srv.App.TopupBackoff = time.Hour
	p.credit(2) // $6: armed again
	p.credit(-1.50)
	p.round()
	if n := len(p.topups()); n != 1 {
		t.Fatalf("%d top-ups during the backoff, want 1", n)
	}
	st, _ := p.srv.Store.WalletStatesOf(context.Background(), p.account)
	if st.TopupState != models.TopupDue || st.TopupNotBefore == nil || time.Until(*st.TopupNotBefore) < 50*time.Minute {
		t.Fatalf("wallet %+v, want due, not before about an hour from now", st)
	}

	// Saving the settings forgets the failures; three declines in a row
	// then pause auto top-up.
	p.srv.App.TopupBackoff = time.Millisecond
	if res, _ := p.setTopup("on", "5", "20", "100"); res.StatusCode != http.StatusSeeOther {
		t.Fatal("save settings")
	}
	for i := 2; i <= 4; i++ {
		time.Sleep(5 * time.Millisecond) // the backoff
		p.round()
		if n := len(p.topups()); n != i {
			t.Fatalf("%d top-ups, want %d", n, i)
		}
		p.credit(2) // armed again
		p.credit(-2)
	}
	p.round()
	if n := len(p.topups()); n != 4 {
		t.Fatalf("%d top-ups after the pause, want 4", n)
	}
	if prof := p.profile(); prof.TopupPausedAt == nil || prof.TopupFailures != 3 {
		t.Fatalf("profile %+v: want paused after 3 failures", prof)
	}
	_, text = p.billingDoc()
	if !strings.Contains(text(`[data-testid=topup-paused]`), "paused itself after 3 failed top-ups") {
		t.Fatalf("Billing does not say auto top-up paused: %q", text(`#auto-topup`))
	}
	if ms := box.with("Auto top-up is paused"); len(ms) != 1 {
		t.Fatalf("%d pause mails, want 1", len(ms))
	}
	if n := len(box.with("was declined")); n != 4 {
		t.Fatalf("%d decline mails, want 4", n)
	}

	// Saving the settings turns it on again: the balance is below the
	// threshold, so a top-up starts at once.
	if res, _ := p.setTopup("on", "5", "20", "100"); res.StatusCode != http.StatusSeeOther {
		t.Fatal("save settings")
	}
	if _, text := p.billingDoc(); text(`[data-testid=topup-paused]`) != "" {
		t.Fatal("still paused after saving the settings")
	}
	p.round()
	if n := len(p.topups()); n != 5 {
		t.Fatalf("%d top-ups after turning it on again below the threshold, want 5", n)
	}
	if err := p.srv.Store.LedgerInvariant(context.Background(), p.account); err != nil {
		t.Fatal(err)
	}
}

// TestAutoTopupNeedsAuthentication: a card whose bank wants the customer
// leaves the top-up waiting for confirmation; the mail links to it, and
// Confirm on its page opens a checkout that pays that same top-up, once.
func TestAutoTopupNeedsAuthentication(t *testing.T) {
	box := &mailbox{}
	srv := testenv.NewServer(t, topupOptions(box))
	p := topupAccount(t, srv, "ada@example.com", "3184", 6, "100")
	p.credit(-1.50)
	p.round()
	tops := p.topups()
	if len(tops) != 1 || tops[0].Status != models.PaymentActionRequired || tops[0].FailureCode != models.CodeAuthenticationRequired {
		t.Fatalf("top-ups %+v, want one waiting for authentication", tops)
	}
	id := tops[0].ID
	ms := box.with("Confirm your auto top-up of $20.00")
	if len(ms) != 1 || !strings.Contains(ms[0].text, "/billing/payments/"+id) {
		t.Fatalf("mails %+v, want one linking to the payment", ms)
	}
	if count(p.overviewAlerts(), models.AlertTopupAction) != 1 {
		t.Fatal("Overview does not show the top-up to confirm")
	}
	_, page := p.get("/billing/payments/" + id)
	if testenv.Doc(t, page).Find(`[data-testid=confirm-payment]`).Length() != 1 {
		t.Fatal("the payment's page has no Confirm button")
	}
	res, _ := p.post("/billing/payments/"+id, "/billing/payments/"+id+"/confirm", nil)
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/billing/test-checkout/cs_test_") {
		t.Fatalf("confirm: %d to %q, want the test checkout", res.StatusCode, loc)
	}
	before := p.balance()
	sid := strings.TrimPrefix(loc, "/billing/test-checkout/")
	if res := p.testAction(sid, "pay"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("pay: %d", res.StatusCode)
	}
	if got := p.balance() - before; got != 20*models.MicrosPerUSD || p.status(id) != models.PaymentPaid {
		t.Fatalf("after confirming: credited %s, status %s", models.FormatUSD(got), p.status(id))
	}
	// A second Confirm finds nothing to confirm.
	res, _ = p.post("/billing/payments/"+id, "/billing/payments/"+id+"/confirm", nil)
	if res.Header.Get("Location") != "/billing/payments/"+id {
		t.Fatalf("confirming a paid top-up: to %q", res.Header.Get("Location"))
	}
	p.round()
	if len(box.with("Receipt 000001")) != 1 || len(p.topups()) != 1 {
		t.Fatal("want receipt 000001 mailed once, and no other top-up")
	}
}

// TestAutoTopupMonthlyCap: top-ups stop at the month's cap, Billing says
// so, and the capped alert is made once a month.
func TestAutoTopupMonthlyCap(t *testing.T) {
	box := &mailbox{}
	srv := testenv.NewServer(t, topupOptions(box))
	p := topupAccount(t, srv, "ada@example.com", "4242", 6, "30")
	p.credit(-1.50)
	p.round()
	if tops := p.topups(); len(tops) != 1 || tops[0].Status != models.PaymentPaid {
		t.Fatalf("first top-up: %+v", tops)
	}
	for i := 0; i < 2; i++ {
		p.credit(-21) // below $5 again: $20 more would pass the $30 cap
		p.round()
		p.credit(21)
	}
	if n := len(p.topups()); n != 1 {
		t.Fatalf("%d top-ups with a $30 cap, want 1", n)
	}
	p.credit(-21)
	_, text := p.billingDoc()
	if got := text(`[data-testid=topup-capped]`); !strings.Contains(got, "monthly cap is reached") {
		t.Fatalf("Billing says %q, want the cap reached", got)
	}
	if got := text(`[data-testid=topup-month]`); !strings.Contains(got, "$20.00 of the $30.00 cap") {
		t.Fatalf("Billing says %q about this month", got)
	}
	if ms := box.with("reached its monthly cap"); len(ms) != 1 {
		t.Fatalf("%d cap mails, want 1", len(ms))
	}
	if count(p.overviewAlerts(), models.AlertTopupCapped) != 1 {
		t.Fatal("Overview does not show the cap once")
	}
}

// TestReceipts: every paid payment, recharge or auto top-up, gets the
// next receipt number of its account, a printable receipt page, and one
// mail; another account's payment, or one not paid, has none.
func TestReceipts(t *testing.T) {
	box := &mailbox{}
	srv := testenv.NewServer(t, topupOptions(box))
	p := topupAccount(t, srv, "ada@example.com", "4242", 6, "100")
	pay1, sid1 := p.checkout("25")
	pending, _ := p.checkout("10")
	pay2, sid2 := p.checkout("30")
	p.testAction(sid2, "pay") // paid before the first
	p.testAction(sid1, "pay")
	p.credit(-57) // $6 + $55 recharged: $4 left
	p.round()
	p.round()
	top := p.topups()[0]

	want := map[string]int64{pay2.ID: 1, pay1.ID: 2, top.ID: 3}
	for id, n := range want {
		got, err := srv.Store.PaymentOf(context.Background(), p.account, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.ReceiptNumber == nil || *got.ReceiptNumber != n {
			t.Fatalf("payment %s: receipt %v, want %d", id, got.ReceiptNumber, n)
		}
		label := models.ReceiptLabel(n)
		if ms := box.with("Receipt " + label + " "); len(ms) != 1 {
			t.Fatalf("receipt %s mailed %d times, want once", label, len(ms))
		}
	}

	res, page := p.get("/billing/payments/" + top.ID + "/receipt")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("receipt page: %d", res.StatusCode)
	}
	doc := testenv.Doc(t, page)
	for sel, want := range map[string]string{
		"[data-testid=receipt-number]":  "000003",
		"[data-testid=receipt-amount]":  "$20.00 (USD)",
		"[data-testid=receipt-method]":  "Visa •••• 4242",
		"[data-testid=receipt-email]":   "ada@example.com",
		"[data-testid=receipt-account]": p.account,
		"[data-testid=receipt-date]":    " UTC",
		"[data-testid=receipt] h1":      "TT Console",
	} {
		if got := doc.Find(sel).Text(); !strings.Contains(got, want) {
			t.Errorf("receipt %s: %q, want %q", sel, got, want)
		}
	}
	if got := doc.Find("[data-testid=receipt-method]").Text(); got != "Visa •••• 4242" {
		t.Errorf("method %q", got)
	}
	if _, page := p.get("/billing/payments/" + pay1.ID + "/receipt"); !strings.Contains(page, "Test checkout (no card)") {
		t.Error("a test checkout's receipt does not say how it was paid")
	}

	if res, _ := p.get("/billing/payments/" + pending.ID + "/receipt"); res.StatusCode != http.StatusNotFound {
		t.Fatalf("an unpaid payment's receipt: %d, want 404", res.StatusCode)
	}
	other := newPayer(t, srv, "eve@example.com")
	if res, _ := other.get("/billing/payments/" + top.ID + "/receipt"); res.StatusCode != http.StatusNotFound {
		t.Fatalf("another account's receipt: %d, want 404", res.StatusCode)
	}
	// Billing links each paid payment to its receipt.
	_, billing := p.get("/billing")
	if n := testenv.Doc(t, billing).Find(`[data-testid=receipt-link]`).Length(); n != 3 {
		t.Fatalf("%d receipt links on Billing, want 3", n)
	}
}
