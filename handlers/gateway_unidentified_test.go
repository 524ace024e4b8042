package handlers_test

import (
	"context"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"ttconsole/handlers"
	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// metricValue reads one sample of the server's /metrics, 0 when absent.
func metricValue(t *testing.T, srv *testenv.Server, sample string) int {
	t.Helper()
	res, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\d+)$`).FindStringSubmatch(testenv.Body(t, res))
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestCallsNoKeyIdentifiesAreNotStoredAndAreLimited makes 300 calls that
// no key identifies (missing, malformed and unknown keys, unknown paths
// and oversized bodies without a key) from one address: none is stored
// in the request log, every one is counted in the metrics, and past the
// per-address limit they get 429 with the usual headers. Another address
// still gets its 401, and a valid key from the limited address still
// works; a revoked key's call is its account's and is stored.
func TestCallsNoKeyIdentifiesAreNotStoredAndAreLimited(t *testing.T) {
	p := newPlatform(t, testenv.Options{Config: handlers.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}})
	ctx := context.Background()
	revoked, revokedSecret := p.newKey(p.account, models.KeyInput{Name: "gone"})
	if _, err := p.srv.Store.SetAPIKeyStatus(ctx, p.account, revoked.ID, models.AdminCLI, "revoke"); err != nil {
		t.Fatal(err)
	}
	// The rows of the account's log, and whether calls are stored at all.
	rows := func() int { return len(p.calls(p.account, models.RequestFilter{})) }
	before := rows()
	var unidentified []string

	from := func(ip string) []string { return []string{"X-Forwarded-For", ip} }
	chat := chatBody("tt-chat-small", 10, nil)
	big := `{"model":"tt-chat-small","messages":[{"role":"user","content":"` + strings.Repeat("x", 1<<20) + `"}]}`
	bogus := []struct{ method, path, secret, body string }{
		{"POST", "/v1/chat/completions", "", chat},
		{"POST", "/v1/chat/completions", "not-a-key", chat},
		{"POST", "/v1/chat/completions", "sk-tt-" + strings.Repeat("A", 43), chat},
		{"GET", "/v1/models", "sk-tt-guess", ""},
		{"GET", "/v1/nope", "", ""},
		{"GET", "/v1/nope", "sk-tt-" + strings.Repeat("B", 43), ""},
		{"POST", "/v1/embeddings", "", big},
	}
	const attacker = "203.0.113.50"
	start := time.Now()
	answered, first429 := map[int]int{}, -1
	var last apiResult
	for i := range 300 {
		b := bogus[i%len(bogus)]
		if b.body == big && i > 30 {
			b = bogus[0] // a few oversized bodies are enough
		}
		last = p.do(b.method, b.path, b.secret, b.body, from(attacker)...)
		unidentified = append(unidentified, last.id())
		answered[last.res.StatusCode]++
		if last.res.StatusCode == http.StatusTooManyRequests && first429 < 0 {
			first429 = i
		}
	}
	took := time.Since(start)
	if n := rows() - before; n != 0 {
		t.Errorf("%d calls that no key identifies were stored in the request log", n)
	}
	for _, id := range unidentified {
		notStored(t, p.srv.Store, id, "a call no key identifies")
	}
	for st := range answered {
		if st != 401 && st != 404 && st != 413 && st != 429 {
			t.Errorf("answers %v: unexpected status %d", answered, st)
		}
	}
	if first429 < 0 || last.res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("answers %v: the address was never limited", answered)
	}
	typ, msg := errorOf(t, last)
	h := last.res.Header
	limit, _ := strconv.Atoi(h.Get("X-RateLimit-Limit"))
	retry, err := strconv.Atoi(h.Get("Retry-After"))
	reset, _ := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64)
	if typ != "rate_limited" || !strings.Contains(msg, attacker) || limit < 1 || h.Get("X-RateLimit-Remaining") != "0" ||
		err != nil || retry < 1 || retry > 60 || reset < time.Now().Unix() {
		t.Fatalf("429: %s %q, headers %v", typ, msg, h)
	}
	// The limit is a burst of `limit` failures refilled over a minute: a
	// slow machine may see a few refills during the 300 calls.
	if refills := int(took/(time.Minute/time.Duration(limit))) + 1; first429 < limit || answered[429] < 300-limit-refills {
		t.Errorf("answers %v, first 429 at call %d: want %d failures, then 429 (%d refills)", answered, first429, limit, refills)
	}
	for st, n := range answered {
		if got := metricValue(t, p.srv, `tt_gateway_unidentified_total{status="`+strconv.Itoa(st)+`"}`); got != n {
			t.Errorf("metric for status %d: %d, want %d", st, got, n)
		}
	}

	// Another address is not limited.
	if r := p.do("POST", "/v1/chat/completions", "sk-tt-"+strings.Repeat("C", 43), chat, from("198.51.100.7")...); r.res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("another address: %d %s, want 401", r.res.StatusCode, r.body)
	} else {
		notStored(t, p.srv.Store, r.id(), "a call no key identifies, from another address")
	}
	// A valid key from the limited address goes through the usual checks.
	r := p.do("GET", "/v1/models", p.secret, "", from(attacker)...)
	if r.res.StatusCode != http.StatusOK || r.res.Header.Get("X-RateLimit-Limit") != "600" {
		t.Fatalf("valid key from the limited address: %d %s", r.res.StatusCode, r.body)
	}
	p.row(p.account, r.id())
	// A revoked key identifies its account: refused, and stored for it.
	r = p.do("POST", "/v1/chat/completions", revokedSecret, chat, from(attacker)...)
	if typ, _ := errorOf(t, r); r.res.StatusCode != http.StatusUnauthorized || typ != "unauthorized" {
		t.Fatalf("revoked key: %d %s", r.res.StatusCode, r.body)
	}
	if row := p.row(p.account, r.id()); row.Status != http.StatusUnauthorized || row.KeyID == nil || *row.KeyID != revoked.ID {
		t.Fatalf("revoked key's row: %+v", row)
	}
	if n := rows() - before; n != 2 {
		t.Errorf("%d new rows, want the valid and the revoked key's calls", n)
	}

	// IPv6 addresses are limited by their /64, which one subscriber holds.
	for i := range limit + 1 {
		p.do("GET", "/v1/models", "", "", from("2001:db8:1:2::"+strconv.Itoa(i+1))...)
	}
	if r := p.do("GET", "/v1/models", "", "", from("2001:db8:1:2:ffff::9")...); r.res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("another address of a limited /64: %d, want 429", r.res.StatusCode)
	}
	if r := p.do("GET", "/v1/models", "", "", from("2001:db8:1:3::1")...); r.res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("another /64: %d, want 401", r.res.StatusCode)
	}
}

// TestFailedAuthLimitIsSharedThroughRedis: with Redis, two instances count
// one address's failed authentications together, so the limit holds
// behind a load balancer.
func TestFailedAuthLimitIsSharedThroughRedis(t *testing.T) {
	rds := testenv.StartRedis(t)
	srvs := testenv.Instances(t, 2, testenv.Options{RedisURL: rds.URL,
		Config: handlers.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}})
	inst := []*platform{{t: t, srv: srvs[0]}, {t: t, srv: srvs[1]}}
	start := time.Now()
	first429, limit := -1, 0
	for i := range 100 {
		r := inst[i%2].do("GET", "/v1/models", "sk-tt-"+strings.Repeat("D", 43), "", "X-Forwarded-For", "203.0.113.60")
		if r.res.StatusCode == http.StatusTooManyRequests {
			first429 = i
			limit, _ = strconv.Atoi(r.res.Header.Get("X-RateLimit-Limit"))
			break
		}
	}
	if first429 < 0 {
		t.Fatal("100 failed authentications over two instances were never limited")
	}
	refills := int(time.Since(start)/(time.Minute/time.Duration(limit))) + 1
	if first429 < limit || first429 > limit+refills {
		t.Fatalf("first 429 at call %d over two instances, want it after %d (+%d refills): the count is not shared", first429, limit, refills)
	}
	if n := metricValue(t, srvs[0], `tt_ratelimit_local_fallback_total`) + metricValue(t, srvs[1], `tt_ratelimit_local_fallback_total`); n != 0 {
		t.Fatalf("%d counts fell back to the local limiter", n)
	}
}
