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
// sees that account's receipts and saves its auto top-up settings there,
// not in their own.
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
	audit, _, err := srv.Store.AuditLog(ctx, bea.account, models.AuditFilter{Action: models.AuditAutoTopupChanged}, 10)
	if err != nil || len(audit) != 2 || audit[0].Actor != "carl@example.com" || !strings.Contains(audit[0].Before, "$5.00") ||
		!strings.Contains(audit[0].After, "$7.00") {
		t.Fatalf("the change in Bea's audit log: %+v %v", audit, err)
	}
}
