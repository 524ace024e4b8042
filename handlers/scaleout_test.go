package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ttconsole/handlers"
	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// Scale-out tests: two real servers on 127.0.0.1, each with its own
// connection pool, on one PostgreSQL database and one Redis, as two
// instances behind a load balancer. They run on PostgreSQL in both passes
// of CI, whose SQLite pass names the server in TT_TEST_POSTGRES_URL and
// the Redis in TT_TEST_REDIS_URL (see testenv.ScaleOut).

// twoInstances starts two servers on one fresh PostgreSQL database and
// returns a platform (an account with a key) on each; both see the same
// account.
func twoInstances(t *testing.T, opts testenv.Options) (a, b *platform) {
	t.Helper()
	srvs := testenv.PostgresInstances(t, 2, opts)
	a = &platform{t: t, srv: srvs[0]}
	a.account, a.key, a.secret = a.newAccount("owner@example.com", 10*models.MicrosPerUSD, models.KeyInput{Name: "default", RPM: "600"})
	b = &platform{t: t, srv: srvs[1], account: a.account, key: a.key, secret: a.secret}
	return a, b
}

// limitHeaders reads the X-RateLimit-* headers of one answer.
func limitHeaders(t *testing.T, r apiResult) (limit, remaining int, reset int64) {
	t.Helper()
	h := r.res.Header
	var err1, err2, err3 error
	limit, err1 = strconv.Atoi(h.Get("X-RateLimit-Limit"))
	remaining, err2 = strconv.Atoi(h.Get("X-RateLimit-Remaining"))
	reset, err3 = strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		t.Fatalf("rate-limit headers missing or not numbers: %v", h)
	}
	return limit, remaining, reset
}

// TestScaleOutRateLimitIsShared: a key with rpm N gets N calls in all,
// whichever instances they reach, and the rest are 429 with consistent
// headers.
func TestScaleOutRateLimitIsShared(t *testing.T) {
	redisURL := testenv.ScaleOut(t)
	a, b := twoInstances(t, testenv.Options{RedisURL: redisURL})
	const n = 8
	inst := []*platform{a, b}

	t.Run("one after another", func(t *testing.T) {
		_, k, secret := a.newAccount("seq@example.com", 0, models.KeyInput{Name: "seq", RPM: strconv.Itoa(n)})
		_ = k
		accepted := 0
		for i := 0; i < 3*n; i++ {
			r := inst[i%2].do("GET", "/v1/models", secret, "")
			limit, remaining, reset := limitHeaders(t, r)
			if limit != n {
				t.Fatalf("X-RateLimit-Limit %d, want %d", limit, n)
			}
			if reset < time.Now().Unix() || reset > time.Now().Add(time.Minute+2*time.Second).Unix() {
				t.Fatalf("X-RateLimit-Reset %d is not within the coming minute", reset)
			}
			switch r.res.StatusCode {
			case 200:
				accepted++
				// The count is one for both instances: each call sees the
				// other instance's calls.
				if want := n - accepted; remaining != want {
					t.Fatalf("call %d (instance %d): X-RateLimit-Remaining %d, want %d", i, i%2, remaining, want)
				}
			case 429:
				if typ, _ := errorOf(t, r); typ != "rate_limited" {
					t.Fatalf("429 of type %s", typ)
				}
				retry, err := strconv.Atoi(r.res.Header.Get("Retry-After"))
				if err != nil || retry < 1 || retry > 60 {
					t.Fatalf("Retry-After %q", r.res.Header.Get("Retry-After"))
				}
				if remaining != 0 {
					t.Fatalf("429 with X-RateLimit-Remaining %d", remaining)
				}
			default:
				t.Fatalf("unexpected %d %s", r.res.StatusCode, r.body)
			}
		}
		if accepted != n {
			t.Fatalf("%d calls accepted across two instances, want exactly %d", accepted, n)
		}
	})

	t.Run("all at once", func(t *testing.T) {
		_, _, secret := a.newAccount("burst@example.com", 0, models.KeyInput{Name: "burst", RPM: strconv.Itoa(n)})
		results := make(chan apiResult, 4*n)
		var wg sync.WaitGroup
		for i := 0; i < 4*n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results <- inst[i%2].do("GET", "/v1/models", secret, "")
			}()
		}
		wg.Wait()
		close(results)
		status := map[int]int{}
		for r := range results {
			status[r.res.StatusCode]++
			if limit, _, _ := limitHeaders(t, r); limit != n {
				t.Errorf("X-RateLimit-Limit %d", limit)
			}
			if r.res.StatusCode == 429 && r.res.Header.Get("Retry-After") == "" {
				t.Errorf("429 without Retry-After")
			}
		}
		if status[200] > n || status[200] < n-1 || status[200]+status[429] != 4*n {
			t.Fatalf("answers %v: want at most %d accepted and the rest 429", status, n)
		}
	})
}

// TestScaleOutNoDoubleSpend funds a wallet for exactly n overlapping
// holds and sends 4n concurrent calls spread over both instances.
func TestScaleOutNoDoubleSpend(t *testing.T) {
	redisURL := testenv.ScaleOut(t)
	a, b := twoInstances(t, testenv.Options{RedisURL: redisURL})
	const n = 5
	slow := map[string]string{"sim_delay_ms": "1500", "sim_output_tokens": "1000"}
	hold := chatHold(t, 1000, slow)
	account, _, secret := a.newAccount("exact@example.com", n*hold, models.KeyInput{Name: "exact", RPM: "600"})
	inst := []*platform{a, b}
	results := make(chan apiResult, 4*n)
	for i := 0; i < 4*n; i++ {
		go func() {
			results <- inst[i%2].chat(secret, 1000, slow)
		}()
	}
	ok, refused := 0, 0
	for i := 0; i < 4*n; i++ {
		r := <-results
		switch r.res.StatusCode {
		case 200:
			ok++
		case 402:
			if typ, _ := errorOf(t, r); typ != "billing_shortfall" {
				t.Errorf("402 of type %s", typ)
			}
			refused++
		default:
			t.Errorf("unexpected %d %s", r.res.StatusCode, r.body)
		}
	}
	if ok > n || ok+refused != 4*n {
		t.Fatalf("%d accepted and %d refused: more than %d holds were placed", ok, refused, n)
	}
	if ok != n {
		t.Fatalf("%d accepted, want %d: the wallet covered exactly %d holds", ok, n, n)
	}
	w := a.wallet(account)
	if w.BalanceMicros < 0 || w.HeldMicros != 0 {
		t.Fatalf("wallet after: %+v", w)
	}
	a.invariants(account)
	b.invariants(account)
}

// TestScaleOutWebhookCreditsOnce delivers one payment event to both
// instances at once, several times: exactly one credit.
func TestScaleOutWebhookCreditsOnce(t *testing.T) {
	redisURL := testenv.ScaleOut(t)
	srvs := testenv.PostgresInstances(t, 2, testenv.Options{RedisURL: redisURL,
		Config: handlers.Config{StripeWebhookSecrets: []string{testWebhookSecret}}})
	p := newPayer(t, srvs[0], "ada@example.com")
	pay, sid := p.checkout("40")
	payload := checkoutEvent("evt_two_instances", models.EventCheckoutCompleted, sid, pay.ID, 4000, "paid")

	outcomes := make(chan string, 10)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			now := time.Now()
			status, body := postWebhook(t, srvs[i%2], payload, "t="+strconv.FormatInt(now.Unix(), 10)+",v1="+stripeSig(payload, testWebhookSecret, now))
			if status != http.StatusOK {
				t.Errorf("delivery to instance %d: %d %s", i%2, status, body)
			}
			var out struct{ Outcome string }
			json.Unmarshal([]byte(body), &out)
			outcomes <- out.Outcome
		}()
	}
	wg.Wait()
	close(outcomes)
	got := map[string]int{}
	for o := range outcomes {
		got[o]++
	}
	if got[models.EventCredited] != 1 || got[models.EventDuplicate] != 9 {
		t.Errorf("outcomes %v, want 1 credited and 9 duplicates", got)
	}
	if bal := p.balance(); bal != 40*models.MicrosPerUSD {
		t.Errorf("balance %s, want $40.00", models.FormatUSD(bal))
	}
}

// TestScaleOutSessions: a session made on one instance is valid on the
// other, and logging out on either ends it on both.
func TestScaleOutSessions(t *testing.T) {
	redisURL := testenv.ScaleOut(t)
	srvs := testenv.PostgresInstances(t, 2, testenv.Options{RedisURL: redisURL})
	onA := newBrowser(t, srvs[0])
	if res := onA.signup("ada@example.com", "correct horse battery"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign up: %d", res.StatusCode)
	}
	cookie := onA.sessionCookie()
	if cookie == "" {
		t.Fatal("no session cookie")
	}
	// The same browser reaching the other instance (same host, other port:
	// cookies do not depend on the port).
	onB := &browser{t: t, srv: srvs[1], c: onA.c}
	if !onB.signedIn() {
		t.Fatal("the session made on instance A is not valid on instance B")
	}
	if res, _ := onB.post("/", "/logout", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout on B: %d", res.StatusCode)
	}
	for i, srv := range srvs {
		req, _ := http.NewRequest("GET", srv.URL+"/", nil)
		req.AddCookie(&http.Cookie{Name: "tt_session", Value: cookie})
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("the old session cookie on instance %d after logout on B: %d, want a redirect to log in", i, res.StatusCode)
		}
	}
}

// TestScaleOutReapersEndEachOnce runs both instances' reapers over the same
// expired holds and overdue tasks: each ends exactly once.
func TestScaleOutReapersEndEachOnce(t *testing.T) {
	redisURL := testenv.ScaleOut(t)
	a, b := twoInstances(t, testenv.Options{RedisURL: redisURL})
	ctx := context.Background()
	st := a.srv.Store
	const holds, tasks = 40, 20
	for i := 0; i < holds+tasks; i++ {
		r := &models.Request{ID: st.NewRequestID(), AccountID: &a.account, KeyID: &a.key.ID, Method: "POST",
			Path: "/v1/chat/completions", Status: 200, CreatedAt: time.Now().UTC()}
		if _, err := st.StartCall(ctx, r, a.key.ID, nil, 1000, time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if i >= holds {
			if err := st.CreateTask(ctx, &models.Task{ID: st.NewID("task"), AccountID: a.account, KeyID: a.key.ID,
				RequestID: r.ID, Model: "tt-video-1", UpstreamID: "up_" + r.ID, Status: models.TaskRunning,
				PriceMicros: 1000, CreatedAt: time.Now().UTC(), ExpiresAt: time.Now().UTC()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(5 * time.Millisecond)
	var mu sync.Mutex
	ended := map[string]int{}
	var wg sync.WaitGroup
	for i, s := range []*models.Store{a.srv.Store, b.srv.Store, a.srv.Store, b.srv.Store} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// As each instance's reaper does: tasks first, then holds.
			nt, err := s.ExpireTasks(ctx, time.Now())
			if err != nil {
				t.Errorf("reaper %d: expire tasks: %v", i, err)
			}
			nh, err := s.ExpireHolds(ctx, time.Now())
			if err != nil {
				t.Errorf("reaper %d: expire holds: %v", i, err)
			}
			mu.Lock()
			ended["tasks"] += nt
			ended["holds"] += nh
			mu.Unlock()
		}()
	}
	wg.Wait()
	if ended["tasks"] != tasks || ended["holds"] != holds {
		t.Fatalf("reapers ended %d tasks and %d holds, want %d and %d", ended["tasks"], ended["holds"], tasks, holds)
	}
	hs, outcomes := callStates(t, st, a.account)
	running, err := st.RunningTasks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	expired, openHolds, pending := hs[models.HoldExpired], hs[models.HoldOpen], outcomes[models.OutcomePending]
	if expired != holds+tasks || openHolds != 0 || len(running) != 0 || pending != 0 {
		t.Fatalf("%d holds expired (want %d), %d open holds, %d running tasks, %d pending requests",
			expired, holds+tasks, openHolds, len(running), pending)
	}
	a.invariants(a.account)
}

// readyz returns /readyz's status and body.
func readyz(t *testing.T, p *platform) (int, map[string]string) {
	t.Helper()
	r := p.do("GET", "/readyz", "", "")
	var out map[string]string
	if err := json.Unmarshal([]byte(r.body), &out); err != nil {
		t.Fatalf("/readyz body %q: %v", r.body, err)
	}
	return r.res.StatusCode, out
}

// metric returns the value of an unlabelled metric on /metrics.
func metric(t *testing.T, p *platform, name string) string {
	t.Helper()
	r := p.do("GET", "/metrics", "", "")
	for _, line := range strings.Split(r.body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return ""
}

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// TestScaleOutRedisOutage stops Redis mid-test: calls keep succeeding
// under each instance's local limiter, /readyz and /metrics say so, and
// when Redis is back both instances share limits again by themselves.
func TestScaleOutRedisOutage(t *testing.T) {
	rds := testenv.StartRedis(t)
	a, b := twoInstances(t, testenv.Options{RedisURL: rds.URL,
		Adjust: func(app *handlers.App) { app.RedisProbe = 50 * time.Millisecond }})
	const n = 6
	_, _, secret := a.newAccount("outage@example.com", 0, models.KeyInput{Name: "outage", RPM: strconv.Itoa(n)})
	remaining := func(p *platform) int {
		t.Helper()
		r := p.do("GET", "/v1/models", secret, "")
		if r.res.StatusCode != 200 {
			t.Fatalf("call: %d %s", r.res.StatusCode, r.body)
		}
		_, rem, _ := limitHeaders(t, r)
		return rem
	}

	for _, p := range []*platform{a, b} {
		if status, body := readyz(t, p); status != 200 || body["rate_limits"] != "shared" {
			t.Fatalf("/readyz before the outage: %d %v", status, body)
		}
	}
	if got := []int{remaining(a), remaining(b)}; got[0] != n-1 || got[1] != n-2 {
		t.Fatalf("remaining %v through A then B, want [%d %d]: one shared count", got, n-1, n-2)
	}

	rds.Stop(t)
	// Each instance now counts locally, from a full window of its own.
	for i := 0; i < 3; i++ {
		for _, p := range []*platform{a, b} {
			if got := remaining(p); got != n-1-i {
				t.Fatalf("call %d during the outage: remaining %d, want %d (the local count)", i, got, n-1-i)
			}
		}
	}
	for _, p := range []*platform{a, b} {
		status, body := readyz(t, p)
		if status != 200 || body["status"] != "ok" || body["rate_limits"] != "per_instance_fallback" ||
			!strings.Contains(body["rate_limits_detail"], "Redis unreachable") {
			t.Fatalf("/readyz during the outage: %d %v", status, body)
		}
		if v := metric(t, p, "tt_ratelimit_redis_unreachable"); v != "1" {
			t.Fatalf("tt_ratelimit_redis_unreachable %s during the outage", v)
		}
		if v := metric(t, p, "tt_ratelimit_shared"); v != "0" {
			t.Fatalf("tt_ratelimit_shared %s during the outage", v)
		}
	}

	rds.Start(t) // empty: it never saved
	for _, p := range []*platform{a, b} {
		waitFor(t, "the instance to use Redis again", func() bool {
			_, body := readyz(t, p)
			return body["rate_limits"] == "shared"
		})
		if v := metric(t, p, "tt_ratelimit_redis_unreachable"); v != "0" {
			t.Fatalf("tt_ratelimit_redis_unreachable %s after the outage", v)
		}
	}
	if got := []int{remaining(b), remaining(a), remaining(b)}; got[0] != n-1 || got[1] != n-2 || got[2] != n-3 {
		t.Fatalf("remaining %v through B, A, B after the outage, want [%d %d %d]: shared again", got, n-1, n-2, n-3)
	}
}

// platformThroughProxy is a platform on PostgreSQL reached through a proxy
// the test can cut, with an account of $10 and one key made with in.
func platformThroughProxy(t *testing.T, in models.KeyInput) (*platform, *testenv.Proxy) {
	t.Helper()
	dbURL := testenv.EmptyPostgres(t) // cutting the connection needs a server
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, u.Host)
	u.Host = proxy.Addr
	db, err := models.Open("", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := &platform{t: t, srv: testenv.NewServerOn(t, db)}
	p.account, p.key, p.secret = p.newAccount("owner@example.com", 10*models.MicrosPerUSD, in)
	return p, proxy
}

// TestStreamSettledOnceTheDatabaseIsBack: a stream the client received
// whole while the database was out of reach is charged once the database
// is back, not left to the reaper (which would release it: a free stream).
func TestStreamSettledOnceTheDatabaseIsBack(t *testing.T) {
	p, proxy := platformThroughProxy(t, models.KeyInput{Name: "default"})

	res := p.openStream(context.Background(), streamBody(100, map[string]string{"sim_output_tokens": "8", "sim_interval_ms": "50"}))
	if first := events(res, 1); len(first) != 1 {
		t.Fatalf("first event: %q", first)
	}
	proxy.Cut()
	rest := events(res, -1)
	res.Body.Close()
	if len(rest) == 0 || rest[len(rest)-1] != "[DONE]" {
		t.Fatalf("the stream during the cut: %q, want it whole", rest)
	}
	time.Sleep(300 * time.Millisecond) // the settlement fails meanwhile
	proxy.Restore(t)

	id := res.Header.Get("X-TT-Request-ID")
	var row *models.Request
	waitFor(t, "the stream to be settled", func() bool {
		r, err := p.srv.Store.RequestOf(context.Background(), p.account, id)
		row = r
		return err == nil && r.BillingOutcome != models.OutcomePending
	})
	if row.BillingOutcome != models.OutcomeCharged || row.CompletionTokens != 8 || row.ChargedMicros != chatCost(t, 7, 8) ||
		row.HoldStatus != models.HoldCaptured {
		t.Fatalf("row %+v: want the 8 tokens delivered charged", row)
	}
	if w := p.wallet(p.account); w.HeldMicros != 0 || w.BalanceMicros != 10*models.MicrosPerUSD-row.ChargedMicros {
		t.Fatalf("wallet %+v after the settlement", w)
	}
	p.invariants(p.account)
}

// TestDatabaseBrieflyUnreachable cuts the connection to PostgreSQL: calls
// fail with 503 service_unavailable in the platform's shape (never a
// panic, never a half-written hold), and the instance recovers by itself.
func TestDatabaseBrieflyUnreachable(t *testing.T) {
	p, proxy := platformThroughProxy(t, models.KeyInput{Name: "default", RPM: "600"})
	if r := p.chat(p.secret, 50, nil); r.res.StatusCode != 200 {
		t.Fatalf("before the cut: %d %s", r.res.StatusCode, r.body)
	}

	// A call in flight when the database goes away: its hold was placed
	// whole, and it ends (by the reaper) once the database is back.
	inFlight := make(chan apiResult, 1)
	go func() { inFlight <- p.chat(p.secret, 50, map[string]string{"sim_delay_ms": "400"}) }()
	time.Sleep(200 * time.Millisecond)
	proxy.Cut()

	for _, call := range []func() apiResult{
		func() apiResult { return p.chat(p.secret, 50, nil) },
		func() apiResult { return p.do("GET", "/v1/account", p.secret, "") },
	} {
		r := call()
		if r.res.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("with the database cut: %d %s, want 503", r.res.StatusCode, r.body)
		}
		if typ, _ := errorOf(t, r); typ != "service_unavailable" {
			t.Fatalf("with the database cut: type %s, want service_unavailable", typ)
		}
		if r.id() == "" {
			t.Fatal("a 503 without X-TT-Request-ID")
		}
	}
	if r := <-inFlight; r.res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("the call in flight during the cut: %d %s, want 503", r.res.StatusCode, r.body)
	}
	if status, body := readyz(t, p); status != http.StatusServiceUnavailable || body["database"] != "unreachable" {
		t.Fatalf("/readyz with the database cut: %d %v", status, body)
	}

	proxy.Restore(t)
	waitFor(t, "the instance to reach the database again", func() bool {
		status, _ := readyz(t, p)
		return status == http.StatusOK
	})
	if r := p.chat(p.secret, 50, nil); r.res.StatusCode != 200 {
		t.Fatalf("after the database came back: %d %s", r.res.StatusCode, r.body)
	}
	// The reaper ends whatever was left open when the call's answer could
	// not be recorded; the ledger is whole.
	if _, err := p.srv.Store.ExpireHolds(context.Background(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if w := p.wallet(p.account); w.HeldMicros != 0 {
		t.Fatalf("held %d after the reaper", w.HeldMicros)
	}
	p.invariants(p.account)
}
