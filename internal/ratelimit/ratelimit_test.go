package ratelimit_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"ttconsole/internal/ratelimit"
	"ttconsole/internal/testenv"
)

func newLimiter(t *testing.T, rdb redis.UniversalClient) *ratelimit.Limiter {
	t.Helper()
	l, err := ratelimit.New(rdb, 50*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l.Start(ctx)
	return l
}

func redisClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	rdb, err := ratelimit.NewRedis(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// allowed counts n events one by one and returns how many got through.
func allowed(t *testing.T, l *ratelimit.Limiter, bucket string, perMin, n int) int {
	t.Helper()
	ok := 0
	for range n {
		res, err := l.Count(context.Background(), bucket, perMin, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Limited {
			ok++
		}
	}
	return ok
}

// TestInProcessLimit: without Redis a bucket gets a burst of its limit,
// then waits for the refill; other buckets are not touched, and a count
// of 0 reads the state without using anything.
func TestInProcessLimit(t *testing.T) {
	l := newLimiter(t, nil)
	if got, _ := l.State(); got != "per_instance" {
		t.Fatalf("state %q, want per_instance", got)
	}
	if n := allowed(t, l, "key:a", 5, 8); n != 5 {
		t.Fatalf("%d of 8 allowed at 5 a minute, want 5", n)
	}
	res, err := l.Count(context.Background(), "key:a", 5, 1)
	if err != nil || !res.Limited || res.Remaining != 0 || res.RetryAfter <= 0 || res.RetryAfter > 12*time.Second {
		t.Fatalf("over the limit: %+v %v; want limited, nothing left, a retry within one refill (12s)", res, err)
	}
	peek, err := l.Count(context.Background(), "key:b", 5, 0)
	if err != nil || peek.Limited || peek.Remaining != 5 {
		t.Fatalf("a read of another bucket: %+v %v, want 5 left", peek, err)
	}
	if n := allowed(t, l, "key:b", 5, 5); n != 5 {
		t.Fatalf("another bucket got %d of 5", n)
	}
}

// TestSharedThroughRedisAndBackAfterAnOutage: two limiters on one Redis
// share a bucket's limit; while Redis is down each counts locally and
// still answers; when it is back they share again by themselves.
func TestSharedThroughRedisAndBackAfterAnOutage(t *testing.T) {
	rds := testenv.StartRedis(t)
	a, b := newLimiter(t, redisClient(t, rds.URL)), newLimiter(t, redisClient(t, rds.URL))
	if got, _ := a.State(); got != "shared" {
		t.Fatalf("state %q, want shared", got)
	}
	if n := allowed(t, a, "key:k", 6, 4) + allowed(t, b, "key:k", 6, 4); n != 6 {
		t.Fatalf("%d of 8 allowed across two instances at 6 a minute, want 6", n)
	}

	rds.Stop(t)
	for _, l := range []*ratelimit.Limiter{a, b} {
		if n := allowed(t, l, "key:fresh", 6, 3); n != 3 {
			t.Fatalf("with Redis down, %d of 3 allowed, want 3 (counted locally)", n)
		}
		if got, detail := l.State(); got != "per_instance_fallback" {
			t.Fatalf("state %q (%s) with Redis down", got, detail)
		}
	}

	rds.Start(t)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		sa, _ := a.State()
		sb, _ := b.State()
		if sa == "shared" && sb == "shared" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("states %q and %q: the limiters did not go back to Redis after it answered again", sa, sb)
		}
	}
	if n := allowed(t, a, "key:after", 2, 1) + allowed(t, b, "key:after", 2, 2); n != 2 {
		t.Fatalf("after the outage %d of 3 allowed at 2 a minute, want 2 (shared again)", n)
	}
}
