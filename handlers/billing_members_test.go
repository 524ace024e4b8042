package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// TestBillingActsInTheAccountSwitchedTo: a billing member who also owns
// an account of their own, working in the account they were invited to,
// sees that account's receipts, saves its card and its auto top-up
// settings there, not in their own, and cannot complete the card setup of
// an account they are not working in.
func TestBillingActsInTheAccountSwitchedTo(t *testing.T) {
	box := &mailbox{}
	srv := testenv.NewServer(t, topupOptions(box))
	ctx := context.Background()
	bea := topupAccount(t, srv, "bea@example.com", "4242", 6, "100")
	pay, sid := bea.checkout("25")
	bea.testAction(sid, "pay")

	carl := newPayer(t, srv, "carl@example.com") // owns an account of his own
	owner, err := srv.Store.UserByEmail(ctx, "bea@example.com")
	if err != nil {
		t.Fatal(err)
	}
	_, token, err := srv.Store.Invite(ctx, memberActor(t, srv, owner.ID), bea.account, "carl@example.com", models.RoleBilling, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cu, err := srv.Store.UserByEmail(ctx, "carl@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Store.AcceptInvitation(ctx, models.Actor{}, token, cu, time.Now()); err != nil {
		t.Fatal(err)
	}
	if res, _ := carl.post("/", "/switch", url.Values{"account": {bea.account}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("switch: %d", res.StatusCode)
	}

	res, page := carl.get("/billing/payments/" + pay.ID + "/receipt")
	if res.StatusCode != http.StatusOK || !strings.Contains(page, "bea@example.com") {
		t.Fatalf("the receipt of the account switched to: %d", res.StatusCode)
	}
	res, _ = carl.post("/billing", "/billing/auto-topup", url.Values{"enabled": {"on"}, "threshold_usd": {"7"},
		"amount_usd": {"20"}, "monthly_cap_usd": {"60"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("auto top-up settings: %d", res.StatusCode)
	}
	beaProf, err := srv.Store.BillingProfileOf(ctx, bea.account)
	if err != nil {
		t.Fatal(err)
	}
	carlProf, err := srv.Store.BillingProfileOf(ctx, carl.account)
	if err != nil {
		t.Fatal(err)
	}
	if beaProf.TopupThresholdMicros != 7*models.MicrosPerUSD || carlProf.TopupThresholdMicros == 7*models.MicrosPerUSD {
		t.Fatalf("threshold: Bea's account %d, Carl's own %d; want $7 in Bea's only",
			beaProf.TopupThresholdMicros, carlProf.TopupThresholdMicros)
	}
	// Bea saved 4242 (topupAccount); Carl saves the one that needs
	// authentication, through the TEST MODE setup page of her account.
	carl.saveTestCard("3184")
	if beaProf, err = srv.Store.BillingProfileOf(ctx, bea.account); err != nil || beaProf.CardLast4 != "3184" {
		t.Fatalf("the card Carl saved in Bea's account: %+v %v; want 3184", beaProf, err)
	}
	if carlProf, err = srv.Store.BillingProfileOf(ctx, carl.account); err != nil || carlProf.CardLast4 != "" {
		t.Fatalf("Carl's own account got a card: %+v %v", carlProf, err)
	}
	// A card setup of Bea's account is 404 to Carl once he works in his own.
	res, _ = carl.post("/billing", "/billing/payment-method", nil)
	setup := res.Header.Get("Location")
	if res, _ := carl.post("/", "/switch", url.Values{"account": {carl.account}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("switch back: %d", res.StatusCode)
	}
	if res, _ := carl.get(setup); res.StatusCode != http.StatusNotFound {
		t.Fatalf("Bea's card setup %s seen from Carl's own account: %d, want 404", setup, res.StatusCode)
	}
	if res, _ := carl.post("/billing", setup, url.Values{"action": {"save"}, "card": {"9995"}}); res.StatusCode != http.StatusNotFound {
		t.Fatalf("Bea's card setup completed from Carl's own account: %d, want 404", res.StatusCode)
	}
	if beaProf, err = srv.Store.BillingProfileOf(ctx, bea.account); err != nil || beaProf.CardLast4 != "3184" {
		t.Fatalf("Bea's card after Carl's refused setup: %+v %v; want 3184", beaProf, err)
	}

	audit, _, err := srv.Store.AuditLog(ctx, bea.account, models.AuditFilter{Action: models.AuditAutoTopupChanged}, 10)
	if err != nil || len(audit) != 2 || audit[0].Actor != "carl@example.com" || !strings.Contains(audit[0].Before, "$5.00") ||
		!strings.Contains(audit[0].After, "$7.00") {
		t.Fatalf("the change in Bea's audit log: %+v %v", audit, err)
	}
}
