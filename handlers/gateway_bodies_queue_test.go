package handlers

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"ttconsole/models"
)

// When the database falls behind and the queue of bodies to write is
// full, a call's bodies are dropped and counted on /metrics: the call is
// never made to wait for them.
func TestBodyQueueDropsWhenFullAndNeverWaits(t *testing.T) {
	reg := prometheus.NewRegistry()
	q := newBodyQueue(reg) // no writer runs: the database "has fallen behind"
	dropped := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "tt_gateway_bodies_dropped_total" {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		t.Fatal("no tt_gateway_bodies_dropped_total")
		return 0
	}
	for i := range bodyQueueLen {
		q.add(models.BodyCapture{RequestID: "req_" + string(rune('a'+i%26))})
	}
	if got := dropped(); got != 0 {
		t.Fatalf("dropped %v bodies before the queue was full", got)
	}
	done := make(chan struct{})
	go func() {
		for range 10 {
			q.add(models.BodyCapture{RequestID: "req_late"})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("adding to a full queue blocked the call")
	}
	if got := dropped(); got != 10 {
		t.Fatalf("tt_gateway_bodies_dropped_total = %v, want 10", got)
	}
	if len(q.ch) != bodyQueueLen {
		t.Fatalf("queue holds %d, want %d", len(q.ch), bodyQueueLen)
	}
}
