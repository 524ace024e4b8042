package handlers_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// Two instances serve one account, 32 calls at a time across them, while
// the upstream fails at random and the wallet runs dry part-way: the
// ledger adds up, nothing stays held, no wallet goes below zero, and every
// call the clients saw has one final outcome that agrees with its answer.
func TestTwoInstancesOneBusyAccountWithFailures(t *testing.T) {
	srvs := testenv.Instances(t, 2)
	a := &platform{t: t, srv: srvs[0]}
	const calls, conc = 320, 32
	ok := map[string]string{"sim_output_tokens": "8"}
	hold := chatHold(t, 50, ok)
	// Room for 20 holds at a time: with 32 calls in flight, some are refused.
	a.account, a.key, a.secret = a.newAccount("busy@example.com", 20*hold, models.KeyInput{Name: "busy", RPM: "100000"})
	inst := []*platform{a, {t: t, srv: srvs[1], account: a.account, key: a.key, secret: a.secret}}

	type answer struct {
		id     string
		status int
		typ    string
	}
	answers := make(chan answer, calls)
	var wg sync.WaitGroup
	for g := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < calls; i += conc {
				meta := ok
				if rand.IntN(4) == 0 {
					meta = map[string]string{"sim_status": fmt.Sprint([]int{500, 503}[rand.IntN(2)])}
				}
				r := inst[i%2].chat(a.secret, 50, meta)
				ans := answer{id: r.id(), status: r.res.StatusCode}
				if ans.status != http.StatusOK {
					ans.typ, _ = errorOf(t, r)
				}
				answers <- ans
			}
		}()
	}
	wg.Wait()
	close(answers)

	want := map[int]string{
		http.StatusOK:                 models.OutcomeCharged,
		http.StatusPaymentRequired:    models.OutcomeNotChargedRejected,
		http.StatusBadGateway:         models.OutcomeNotChargedFailed,
		http.StatusServiceUnavailable: models.OutcomeNotChargedFailed,
	}
	seen := map[int]int{}
	for ans := range answers {
		seen[ans.status]++
		outcome, known := want[ans.status]
		if !known {
			t.Errorf("call %s answered %d %s", ans.id, ans.status, ans.typ)
			continue
		}
		if ans.status == http.StatusPaymentRequired && ans.typ != "billing_shortfall" {
			t.Errorf("call %s: 402 %s", ans.id, ans.typ)
		}
		if row := a.row(a.account, ans.id); row.BillingOutcome != outcome || row.Status != ans.status {
			t.Errorf("call %s answered %d, logged %d %s (want %s)", ans.id, ans.status, row.Status, row.BillingOutcome, outcome)
		}
	}
	if seen[http.StatusOK] == 0 || seen[http.StatusPaymentRequired] == 0 || seen[http.StatusBadGateway]+seen[http.StatusServiceUnavailable] == 0 {
		t.Fatalf("answers %v: want successes, failures and shortfalls all", seen)
	}
	w := a.wallet(a.account)
	if w.HeldMicros != 0 || w.BalanceMicros < 0 || w.Available() < 0 {
		t.Fatalf("wallet after: %+v", w)
	}
	a.invariants(a.account)
	t.Logf("answers by status: %v", seen)
}
