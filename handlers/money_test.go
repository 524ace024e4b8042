package handlers_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// moneyAccount is a signed-in account holding $15, then charged $0.0002
// for one call: its balance is $14.9998, which must never read as $15.00.
func moneyAccount(t *testing.T) (*rqAccount, *models.Request) {
	t.Helper()
	srv := testenv.NewServer(t)
	a := rqNewAccount(t, srv, "ada@example.com")
	ctx := context.Background()
	if _, err := srv.Store.Credit(ctx, a.id, 15*models.MicrosPerUSD, models.LedgerAdjustment, "funds", models.LedgerRef{}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	rqLog(t, srv, models.Request{AccountID: &a.id, KeyID: &a.key.ID, Status: 429, ErrorType: "rate_limited",
		BillingOutcome: models.OutcomeNotChargedRejected}, now.Add(-time.Minute))
	r := rqLog(t, srv, models.Request{AccountID: &a.id, KeyID: &a.key.ID, Status: 200, Model: "tt-chat-small",
		HoldMicros: 1_536, ChargedMicros: 200, BillingOutcome: models.OutcomeCharged}, now)
	if _, err := srv.Store.Credit(ctx, a.id, -200, models.LedgerCharge, "API call "+r.ID, models.LedgerRef{RequestID: r.ID}); err != nil {
		t.Fatal(err)
	}
	return a, r
}

func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

// decimalsOf is how many decimals each dollar amount in s has.
func decimalsOf(s string) []int {
	var out []int
	for _, m := range regexp.MustCompile(`\$[0-9,]+\.([0-9]+)`).FindAllStringSubmatch(s, -1) {
		out = append(out, len(m[1]))
	}
	return out
}

// TestMoneyNeverRoundsABalance: a balance of $14.9998 shows as such in
// the header and on Overview and Billing, not as $15.00.
func TestMoneyNeverRoundsABalance(t *testing.T) {
	a, _ := moneyAccount(t)
	for _, path := range []string{"/", "/billing", "/requests", "/keys"} {
		_, page := a.b.get(path)
		if got := strings.TrimSpace(testenv.Doc(t, page).Find(`header .balance`).Text()); got != "$14.9998" {
			t.Errorf("%s: the header balance reads %q, want $14.9998", path, got)
		}
	}
	_, page := a.b.get("/")
	doc := testenv.Doc(t, page)
	for id, want := range map[string]string{"balance": "$14.9998", "available": "$14.9998", "mtd-spend": "$0.0002"} {
		if got := strings.TrimSpace(doc.Find(`[data-testid=` + id + `]`).Text()); got != want {
			t.Errorf("Overview %s = %q, want %q", id, got, want)
		}
	}
	_, page = a.b.get("/billing")
	doc = testenv.Doc(t, page)
	for id, want := range map[string]string{"billing-balance": "$14.9998", "billing-available": "$14.9998", "billing-held": "$0.0000", "billing-mtd": "$0.0002"} {
		if got := strings.TrimSpace(doc.Find(`[data-testid=` + id + `]`).Text()); got != want {
			t.Errorf("Billing %s = %q, want %q", id, got, want)
		}
	}
}

// TestMoneyLedgerBalanceChangesWithACharge: the ledger's balance-after
// carries its amount's precision, so a charge below a cent visibly lowers
// it (not "$15.00" after "$15.00").
func TestMoneyLedgerBalanceChangesWithACharge(t *testing.T) {
	a, _ := moneyAccount(t)
	_, page := a.b.get("/billing")
	rows := testenv.Doc(t, page).Find(`[data-testid=ledger] tbody tr`)
	if rows.Length() != 2 {
		t.Fatalf("%d ledger rows, want 2", rows.Length())
	}
	var got [][2]string
	for i := range rows.Length() {
		cells := rows.Eq(i).Find("td")
		got = append(got, [2]string{strings.TrimSpace(cells.Eq(2).Text()), strings.TrimSpace(cells.Eq(3).Text())})
	}
	want := [][2]string{{"-$0.0002", "$14.9998"}, {"+$15.0000", "$15.0000"}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ledger row %d shows amount %q, balance after %q; want %q, %q", i, got[i][0], got[i][1], want[i][0], want[i][1])
		}
	}
	if kind := strings.TrimSpace(rows.Eq(0).Find("td").Eq(1).Text()); kind != "Charge" {
		t.Errorf("ledger kind reads %q, want Charge", kind)
	}
}

// TestMoneyOnePrecisionPerListAndSentence: the Requests list's Charge
// column, a request's hold and charge, and its billing timeline each use
// one precision for every amount they show.
func TestMoneyOnePrecisionPerListAndSentence(t *testing.T) {
	a, r := moneyAccount(t)
	_, page := a.b.get("/requests")
	doc := testenv.Doc(t, page)
	var charges []string
	doc.Find(`[data-testid=requests-table] td.c-charge`).Each(func(_ int, s *goquery.Selection) {
		charges = append(charges, strings.TrimSpace(s.Text()))
	})
	if strings.Join(charges, " ") != "$0.0002 $0.0000" {
		t.Errorf("Charge column %q, want $0.0002 and $0.0000", charges)
	}

	_, page = a.b.get("/requests/" + r.ID)
	doc = testenv.Doc(t, page)
	hold, charge := strings.TrimSpace(doc.Find(`[data-testid=hold]`).Text()), strings.TrimSpace(doc.Find(`[data-testid=charge]`).Text())
	if hold != "$0.001536" || charge != "$0.000200" {
		t.Errorf("detail shows hold %q and charge %q, want $0.001536 and $0.000200", hold, charge)
	}
	tl := squash(doc.Find(`[data-testid=outcome]`).Text())
	if !strings.Contains(tl, "-$0.000200, balance after $14.999800") {
		t.Errorf("billing timeline %q lacks the charge and the balance it left, at one precision", tl)
	}
	for _, d := range decimalsOf(tl) {
		if d != 6 {
			t.Errorf("billing timeline %q mixes precisions", tl)
			break
		}
	}
}
