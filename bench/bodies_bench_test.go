package bench

import (
	"flag"
	"fmt"
	"runtime"
	"testing"
	"time"
)

var keepBodies = flag.Bool("gw.bodies", false, "the benchmark accounts' keys keep request and response bodies (BenchmarkGateway, BenchmarkBusyAccount)")

// targetBodiesRatio is issue 23's: the gateway's throughput with body
// capture on is at least 0.8 × with it off.
const targetBodiesRatio = 0.8

// BenchmarkBodies measures what keeping request and response bodies costs
// the gateway: one account whose key keeps them against one whose key does
// not, each at concurrency 16, in alternating turns through the same
// server, on whichever engine the run uses. It reports the throughput
// ratio on / off. Like BenchmarkGateway it runs once whatever b.N is (use
// -benchtime 1x) and fails unless every call is answered 200, charged and
// logged:
//
//	go test ./bench -run '^$' -bench Bodies -benchtime 1x
func BenchmarkBodies(b *testing.B) {
	st := newStack(b)
	on := st.addAccountKeeping(b, "bodies-on@example.com", true)
	off := st.addAccountKeeping(b, "bodies-off@example.com", false)
	chat := st.gw.url() + "/v1/chat/completions"
	targets := []target{
		{name: "bodies on", url: chat, secrets: []string{on.secret}, client: newClient(concurrencyHigh)},
		{name: "bodies off", url: chat, secrets: []string{off.secret}, client: newClient(concurrencyHigh)},
	}
	fmt.Printf("\nBody capture on vs off, through the gateway on %s at concurrency %d — %s, %d CPUs, %s; %d rounds × %s per target, alternating\n",
		st.engine, concurrencyHigh, time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), runtime.Version(), *rounds, *roundTime)
	printHeader()

	b.ResetTimer()
	res := turns(b, targets, []*proc{st.gw, st.gw}, st.sim, concurrencyHigh)
	b.StopTimer()

	ratio := res[0].rps / res[1].rps
	fmt.Printf("targets: throughput with bodies kept / without %.2f (≥ %.1f) %s; p50 %.2f vs %.2f ms, p99 %.2f vs %.2f ms\n",
		ratio, targetBodiesRatio, verdict(ratio >= targetBodiesRatio),
		ms(res[0].p50), ms(res[1].p50), ms(res[0].p99), ms(res[1].p99))
	b.ReportMetric(ratio, "on/off")
	b.ReportMetric(res[0].rps, "on_req/s")
	b.ReportMetric(res[1].rps, "off_req/s")

	served := map[string]int{}
	for _, r := range res {
		for k, n := range r.served {
			served[k] += n
		}
	}
	st.verify(b, served, append(res[0].ids, res[1].ids...))
}
