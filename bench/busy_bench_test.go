package bench

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// BenchmarkBusyAccount measures whether one busy account gets the
// throughput of several quiet ones: the gateway at concurrency 16 from one
// account's key, against concurrency 16 spread over four accounts' keys (4
// each), in alternating turns, on whichever engine the run uses (SQLite,
// or PostgreSQL when DATABASE_URL is set; see newStack). It reports the
// ratio busy / four, which issue 18 wants at 0.8 or more: what a busy
// customer is capped at by its own wallet and key rows, rather than by the
// gateway. Like BenchmarkGateway it runs once whatever b.N is (use
// -benchtime 1x) and fails unless every call is answered 200, charged and
// logged.
func BenchmarkBusyAccount(b *testing.B) {
	st := newStack(b)
	busy := st.addAccount(b, "busy@example.com")
	var four []string
	for i := 1; i <= 4; i++ {
		four = append(four, st.addAccount(b, fmt.Sprintf("quiet%d@example.com", i)).secret)
	}
	chat := st.gw.url() + "/v1/chat/completions"
	targets := []target{
		{name: "1 account", url: chat, secrets: []string{busy.secret}, client: newClient(concurrencyHigh)},
		{name: "4 accounts", url: chat, secrets: four, client: newClient(concurrencyHigh)},
	}
	fmt.Printf("\nOne account at concurrency %d vs four at %d each, through the gateway on %s — %s, %d CPUs, %s; %d rounds × %s per target, alternating\n",
		concurrencyHigh, concurrencyHigh/len(four), st.engine, time.Now().UTC().Format("2006-01-02 15:04 MST"),
		runtime.NumCPU(), runtime.Version(), *rounds, *roundTime)
	printHeader()

	b.ResetTimer()
	res := turns(b, targets, []*proc{st.gw, st.gw}, st.sim, concurrencyHigh)
	b.StopTimer()

	ratio := res[0].rps / res[1].rps
	fmt.Printf("targets: busy / four accounts throughput %.2f (≥ %.1f) %s; p50 %.2f vs %.2f ms, p99 %.2f vs %.2f ms\n",
		ratio, targetBusyRatio, verdict(ratio >= targetBusyRatio),
		ms(res[0].p50), ms(res[1].p50), ms(res[0].p99), ms(res[1].p99))
	b.ReportMetric(ratio, "busy/four")
	b.ReportMetric(res[0].rps, "busy_req/s")
	b.ReportMetric(res[1].rps, "four_req/s")

	served := map[string]int{}
	for _, r := range res {
		for k, n := range r.served {
			served[k] += n
		}
	}
	st.verify(b, served, append(res[0].ids, res[1].ids...))
}
