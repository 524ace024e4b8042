package models_test

import (
	"context"
	"flag"
	"sync"
	"syscall"
	"testing"
	"time"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

var (
	billingWorkers = flag.Int("billing.workers", 16, "goroutines of BenchmarkCallBilling, each one call at a time")
	billingGap     = flag.Duration("billing.gap", 0, "pause between a call's hold and its capture, as if waiting for the upstream")
)

// BenchmarkCallBilling measures the store's two money steps of a call
// (StartCall, then FinishCall) from 16 goroutines at once: the write path
// every billed gateway call takes. It reports calls per second and the
// CPU time the process spent per call.
//
//	go test ./models -run '^$' -bench CallBilling [-billing.workers 1] [-billing.gap 1ms]
func BenchmarkCallBilling(b *testing.B) {
	db := testenv.DB(b)
	s := models.NewStore(db)
	ctx := context.Background()
	a := testenv.FundedKey(b, s, "bench@example.com", 1_000_000*models.MicrosPerUSD, models.KeyInput{Name: "bench"})
	k := a.Key
	b.ResetTimer()
	cpu0 := processCPU()
	var wg sync.WaitGroup
	work := make(chan struct{}, b.N)
	for i := 0; i < b.N; i++ {
		work <- struct{}{}
	}
	close(work)
	for w := 0; w < *billingWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				r := &models.Request{ID: s.NewRequestID(), AccountID: &a.ID, KeyID: &k.ID, Method: "POST",
					Path: "/v1/chat/completions", Model: "tt-chat-small", CreatedAt: time.Now().UTC()}
				h, err := s.StartCall(ctx, r, k.ID, nil, 100, time.Minute)
				if err != nil {
					b.Error(err)
					return
				}
				time.Sleep(*billingGap) // the upstream's answer
				r.Status, r.PromptTokens, r.CompletionTokens = 200, 7, 16
				if err := s.FinishCall(ctx, h, r, 30); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/call")
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
