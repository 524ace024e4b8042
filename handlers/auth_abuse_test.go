package handlers_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ttconsole/handlers"
	"ttconsole/internal/testenv"
)

// behindProxy starts the product with loopback as its trusted proxy, so a
// test can speak from many client addresses through X-Forwarded-For.
func behindProxy(t *testing.T, adjust ...func(*handlers.App)) *testenv.Server {
	t.Helper()
	loopback, err := parsePrefix("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	opts := testenv.Options{Config: handlers.Config{TrustedProxies: []netip.Prefix{loopback}}}
	if len(adjust) > 0 {
		opts.Adjust = adjust[0]
	}
	return testenv.NewServer(t, opts)
}

// fromAddr makes every request of c arrive, through the trusted proxy,
// from ip.
type fromAddr struct {
	ip   string
	next http.RoundTripper
}

func (f fromAddr) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.ip)
	return f.next.RoundTrip(r)
}

// browserAt is a fresh browser whose requests come from ip.
func browserAt(t *testing.T, srv *testenv.Server, ip string) *browser {
	b := newBrowser(t, srv)
	b.c.Transport = fromAddr{ip: ip, next: http.DefaultTransport}
	return b
}

// crowd is many clients of one attacker posting forms at once: they share
// one CSRF token (and its cookie) and differ by client address.
type crowd struct {
	srv    *testenv.Server
	token  string
	cookie string
	c      *http.Client
}

func newCrowd(t *testing.T, srv *testenv.Server) *crowd {
	t.Helper()
	b := newBrowser(t, srv)
	token := b.csrf("/signup")
	u, _ := url.Parse(srv.URL)
	var cookie string
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "tt_csrf" {
			cookie = c.Value
		}
	}
	if cookie == "" {
		t.Fatal("no CSRF cookie")
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	t.Cleanup(tr.CloseIdleConnections)
	return &crowd{srv: srv, token: token, cookie: cookie, c: &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}}
}

// answer is what one of the crowd got back.
type answer struct {
	status      int
	retryAfter  string
	contentType string
	body        string
	err         error
}

func (cr *crowd) post(path, ip string, vals url.Values) answer {
	vals.Set("_csrf", cr.token)
	req, _ := http.NewRequest("POST", cr.srv.URL+path, strings.NewReader(vals.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", ip)
	req.AddCookie(&http.Cookie{Name: "tt_csrf", Value: cr.cookie})
	res, err := cr.c.Do(req)
	if err != nil {
		return answer{err: err}
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	return answer{status: res.StatusCode, retryAfter: res.Header.Get("Retry-After"),
		contentType: res.Header.Get("Content-Type"), body: string(body), err: err}
}

// gathered returns the value of an unlabelled gauge or counter of the
// product's metrics registry: what /metrics serves, read without HTTP so
// it can be sampled every millisecond.
func gathered(srv *testenv.Server, name string) (float64, bool) {
	mfs, err := srv.App.Registry.Gather()
	if err != nil {
		return 0, false
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) != 1 {
			continue
		}
		m := mf.GetMetric()[0]
		switch {
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

// scraped returns an unlabelled metric's value from GET /metrics.
func scraped(t *testing.T, srv *testenv.Server, name string) float64 {
	t.Helper()
	res, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(testenv.Body(t, res), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s = %q", name, v)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

// peaks samples, until stopped, the process's heap and the number of
// password hashes the product says are running.
type peaks struct {
	stop    chan struct{}
	done    chan struct{}
	heap    uint64
	running float64
	seen    bool // the running gauge exists
}

func samplePeaks(srv *testenv.Server) *peaks {
	p := &peaks{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for {
			metrics.Read(s)
			p.heap = max(p.heap, s[0].Value.Uint64())
			if v, ok := gathered(srv, "tt_password_hashes_running"); ok {
				p.seen = true
				p.running = max(p.running, v)
			}
			select {
			case <-p.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return p
}

func (p *peaks) end() { close(p.stop); <-p.done }

// TestHashingHoldsMemoryUnder100ConcurrentSignupsAndLogins fires 100
// sign-ups and 100 failed logins at once from five addresses: each
// argon2id hash holds 19 MiB, so only a bounded number may run together;
// the rest wait briefly and are told to retry, never a 500.
func TestHashingHoldsMemoryUnder100ConcurrentSignupsAndLogins(t *testing.T) {
	srv := behindProxy(t)
	cr := newCrowd(t, srv)
	addrs := []string{"198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.5"}

	runtime.GC()
	pk := samplePeaks(srv)
	var wg sync.WaitGroup
	signups := make([]answer, 100)
	logins := make([]answer, 100)
	for i := range 100 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			signups[i] = cr.post("/signup", addrs[i%len(addrs)], url.Values{
				"email": {fmt.Sprintf("crowd%d@example.com", i)}, "password": {"a long enough password"}})
		}()
		go func() {
			defer wg.Done()
			logins[i] = cr.post("/login", addrs[i%len(addrs)], url.Values{
				"email": {fmt.Sprintf("nobody%d@example.com", i)}, "password": {"a wrong password"}})
		}()
	}
	start := time.Now()
	wg.Wait()
	took := time.Since(start)
	pk.end()

	tally := map[string]int{}
	for i, a := range append(signups, logins...) {
		what := "sign-up"
		if i >= 100 {
			what = "login"
		}
		if a.err != nil {
			t.Fatalf("%s: %v", what, a.err)
		}
		tally[what+" "+strconv.Itoa(a.status)]++
		switch a.status {
		case http.StatusSeeOther, http.StatusUnauthorized:
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			if n, err := strconv.Atoi(a.retryAfter); err != nil || n < 1 {
				t.Errorf("%s answered %d with Retry-After %q", what, a.status, a.retryAfter)
			}
			if !strings.HasPrefix(a.contentType, "text/html") {
				t.Errorf("%s answered %d as %q, want the console's HTML page", what, a.status, a.contentType)
			}
		default:
			t.Errorf("%s answered %d", what, a.status)
		}
	}
	t.Logf("answers in %v: %v; peak heap %d MiB; peak hashes running %v", took.Round(time.Millisecond), tally, pk.heap>>20, pk.running)

	if pk.heap >= 300<<20 {
		t.Errorf("heap peaked at %d MiB under 200 concurrent sign-ups and logins, want under 300 MiB", pk.heap>>20)
	}
	slots, ok := gathered(srv, "tt_password_hash_slots")
	if !ok || !pk.seen {
		t.Fatal("/metrics shows no tt_password_hash_slots or tt_password_hashes_running")
	}
	if pk.running < 1 || pk.running > slots || slots < 1 || slots > 4 {
		t.Errorf("at most %v hashes ran at once with %v slots, want between 1 and the slots, and at most 4 slots", pk.running, slots)
	}
	// Five addresses may make a few accounts each, not a hundred; each
	// sign-up answered 303 made its account, and no other call made one.
	created := 0
	for i := range 100 {
		made := registered(t, srv, fmt.Sprintf("crowd%d@example.com", i)) == 1
		if made {
			created++
		}
		if made != (signups[i].status == http.StatusSeeOther) {
			t.Errorf("sign-up %d answered %d, and its account exists: %v", i, signups[i].status, made)
		}
		if registered(t, srv, fmt.Sprintf("nobody%d@example.com", i)) != 0 {
			t.Errorf("a failed login made the account nobody%d", i)
		}
	}
	if created > 5*10 || created != tally["sign-up 303"] {
		t.Errorf("%d accounts made (%d sign-ups answered 303), want at most 10 per address", created, tally["sign-up 303"])
	}
}

// TestBusyHashingAnswers503 holds every hashing slot: the requests that
// cannot get one in time are told to retry on the console's page and
// change nothing.
func TestBusyHashingAnswers503(t *testing.T) {
	srv := behindProxy(t, func(a *handlers.App) { a.Store.LimitHashing(1, 20*time.Millisecond) })
	cr := newCrowd(t, srv)
	var wg sync.WaitGroup
	answers := make([]answer, 20)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ip := fmt.Sprintf("198.51.100.%d", i+1)
			if i%2 == 0 {
				answers[i] = cr.post("/signup", ip, url.Values{
					"email": {fmt.Sprintf("busy%d@example.com", i)}, "password": {"a long enough password"}})
			} else {
				answers[i] = cr.post("/login", ip, url.Values{
					"email": {fmt.Sprintf("busy%d@example.com", i)}, "password": {"a wrong password"}})
			}
		}()
	}
	wg.Wait()
	busy, created := 0, 0
	for _, a := range answers {
		switch {
		case a.err != nil:
			t.Fatal(a.err)
		case a.status == http.StatusServiceUnavailable:
			busy++
			if n, err := strconv.Atoi(a.retryAfter); err != nil || n < 1 {
				t.Errorf("503 with Retry-After %q", a.retryAfter)
			}
			if !strings.HasPrefix(a.contentType, "text/html") || !strings.Contains(a.body, "try again") {
				t.Errorf("503 is not the console's page saying to try again: %q %.200q", a.contentType, a.body)
			}
		case a.status == http.StatusSeeOther:
			created++
		case a.status != http.StatusUnauthorized:
			t.Errorf("status %d", a.status)
		}
	}
	if busy == 0 {
		t.Fatal("20 concurrent hashes through one slot with a 20 ms wait: no 503")
	}
	var emails []string
	for i := range answers {
		emails = append(emails, fmt.Sprintf("busy%d@example.com", i))
	}
	if n := registered(t, srv, emails...); n != created {
		t.Fatalf("%d users for %d successful sign-ups: a refused sign-up wrote rows", n, created)
	}
	if got := scraped(t, srv, "tt_password_hash_busy_total"); int(got) != busy {
		t.Fatalf("tt_password_hash_busy_total = %v, want %d", got, busy)
	}
}

// TestSignupIsThrottledPerAddress: one address makes a few accounts, then
// waits; another address is not affected, and a duplicate email costs no hash.
func TestSignupIsThrottledPerAddress(t *testing.T) {
	srv := behindProxy(t)
	var res *http.Response
	var page string
	made := 0
	for i := range 30 {
		b := browserAt(t, srv, "203.0.113.9")
		res, page = b.post("/signup", "/signup", url.Values{
			"email": {fmt.Sprintf("spam%d@example.com", i)}, "password": {"a long enough password"}})
		if res.StatusCode != http.StatusSeeOther {
			break
		}
		made++
	}
	if res.StatusCode != http.StatusTooManyRequests || made > 10 {
		t.Fatalf("one address made %d accounts, then got %d; want at most 10, then 429", made, res.StatusCode)
	}
	if n, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || n < 1 ||
		!strings.Contains(testenv.Doc(t, page).Find(".form-error").Text(), "Too many sign-ups") {
		t.Fatalf("429 without Retry-After (%q) or a message", res.Header.Get("Retry-After"))
	}
	var emails []string
	for i := range 30 {
		emails = append(emails, fmt.Sprintf("spam%d@example.com", i))
	}
	if n := registered(t, srv, emails...); n != made {
		t.Fatalf("%d users after %d sign-ups: the throttled one wrote rows", n, made)
	}
	if res := browserAt(t, srv, "203.0.113.10").signup("other@example.com", "a long enough password"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("another address: %d", res.StatusCode)
	}

	before := scraped(t, srv, "tt_password_hashes_total")
	res, _ = browserAt(t, srv, "203.0.113.11").post("/signup", "/signup", url.Values{
		"email": {"OTHER@example.com"}, "password": {"a long enough password"}})
	if res.StatusCode != http.StatusConflict {
		t.Fatalf("duplicate sign-up: %d", res.StatusCode)
	}
	if after := scraped(t, srv, "tt_password_hashes_total"); after != before {
		t.Fatalf("a duplicate email cost %v password hashes, want none", after-before)
	}
}

// TestLoginCostsOneHashWhateverItIsSent: a known email, an unknown one,
// a wrong password and one over the length limit all take the same work,
// so the answer's time tells nothing.
func TestLoginCostsOneHashWhateverItIsSent(t *testing.T) {
	srv := behindProxy(t)
	if _, err := srv.Store.CreateAccount(context.Background(), "ada@example.com", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("p", 300)
	cases := []struct{ name, email, password string }{
		{"known email, wrong password", "ada@example.com", "wrong password!!"},
		{"known email, over-long password", "ada@example.com", long},
		{"unknown email", "nobody@example.com", "wrong password!!"},
		{"unknown email, over-long password", "nobody@example.com", long},
		{"known email, empty password", "ada@example.com", ""},
	}
	fastest := map[string]time.Duration{}
	for round := range 3 {
		for i, tc := range cases {
			b := browserAt(t, srv, fmt.Sprintf("198.51.100.%d", 10*round+i+1))
			vals := url.Values{"email": {tc.email}, "password": {tc.password}, "_csrf": {b.csrf("/login")}}
			before := scraped(t, srv, "tt_password_hashes_total")
			start := time.Now()
			res, err := b.c.PostForm(srv.URL+"/login", vals)
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusUnauthorized {
				t.Fatalf("%s: %d, want 401", tc.name, res.StatusCode)
			}
			if n := scraped(t, srv, "tt_password_hashes_total") - before; n != 1 {
				t.Errorf("%s: %v password hashes, want 1", tc.name, n)
			}
			if f, ok := fastest[tc.name]; !ok || took < f {
				fastest[tc.name] = took
			}
		}
	}
	// Generous: every path's fastest answer takes at least a third of the
	// middle path's; skipping the hash is fifty times quicker. (The middle,
	// not the slowest: on a busy machine one path can be slow every round.)
	var times []time.Duration
	for _, d := range fastest {
		times = append(times, d)
	}
	slices.Sort(times)
	middle := times[len(times)/2]
	for name, d := range fastest {
		if d < middle/3 {
			t.Errorf("%s answers in %v, the middle path in %v: the time tells them apart", name, d, middle)
		}
	}
}

// TestChangePasswordGuessesAreThrottled: a session cannot try current
// passwords without limit; once throttled, even the right one changes nothing.
func TestChangePasswordGuessesAreThrottled(t *testing.T) {
	srv := testenv.NewServer(t)
	b := newBrowser(t, srv)
	b.signup("ada@example.com", "correct horse battery")
	var res *http.Response
	var page string
	for i := range 30 {
		res, page = b.post("/account", "/account/password", url.Values{
			"current_password": {fmt.Sprintf("guess number %d", i)}, "new_password": {"attacker's passphrase"}})
		if res.StatusCode == http.StatusTooManyRequests {
			break
		}
		if res.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("wrong guess %d: %d", i, res.StatusCode)
		}
	}
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("30 wrong current passwords never throttled: last status %d", res.StatusCode)
	}
	if n, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || n < 1 ||
		!strings.Contains(testenv.Doc(t, page).Find(".form-error").Text(), "Too many password attempts. Wait") {
		t.Fatalf("429 without Retry-After (%q) or a message saying when to retry", res.Header.Get("Retry-After"))
	}
	res, _ = b.post("/account", "/account/password", url.Values{
		"current_password": {"correct horse battery"}, "new_password": {"attacker's passphrase"}})
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("the right password during the throttle: %d, want 429", res.StatusCode)
	}
	if res, _ := newBrowser(t, srv).login("ada@example.com", "correct horse battery"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("the password changed while throttled: login with the old one answers %d", res.StatusCode)
	}
}

// TestDeviceCookieKeepsTheOwnerIn: an attacker's wrong passwords from
// many addresses lock an email for browsers the account has never signed
// in from, but not for the owner's browser, which holds a device cookie.
func TestDeviceCookieKeepsTheOwnerIn(t *testing.T) {
	srv := behindProxy(t)
	for _, email := range []string{"ada@example.com", "bob@example.com"} {
		if _, err := srv.Store.CreateAccount(context.Background(), email, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
	}
	owner := newBrowser(t, srv)
	if res, _ := owner.login("ada@example.com", "correct horse battery"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("owner's first login: %d", res.StatusCode)
	}
	if res, _ := owner.post("/", "/logout", nil); res.StatusCode != http.StatusSeeOther || owner.signedIn() {
		t.Fatal("logout")
	}

	// Twenty-five guesses per email, each from its own address.
	for _, email := range []string{"ada@example.com", "bob@example.com"} {
		limited := 0
		for i := range 25 {
			res, _ := browserAt(t, srv, fmt.Sprintf("203.0.%d.%d", len(email), i+1)).login(email, fmt.Sprintf("guess %d", i))
			switch res.StatusCode {
			case http.StatusTooManyRequests:
				limited++
			case http.StatusUnauthorized:
			default:
				t.Fatalf("guess %d: %d", i, res.StatusCode)
			}
		}
		if limited < 10 {
			t.Fatalf("%s: only %d of 25 guesses from 25 addresses were throttled", email, limited)
		}
	}

	// A browser that has never signed in to the account waits, even with
	// the right password.
	if res, _ := newBrowser(t, srv).login("ada@example.com", "correct horse battery"); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a fresh browser during the attack: %d, want 429", res.StatusCode)
	}
	// The owner's device cookie names Ada: it does not open Bob's account.
	if res, _ := owner.login("bob@example.com", "correct horse battery"); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("Ada's device cookie with Bob's email: %d, want 429", res.StatusCode)
	}
	// A device cookie that was tampered with counts for nothing.
	forged := newBrowser(t, srv)
	u, _ := url.Parse(srv.URL)
	for _, c := range owner.c.Jar.Cookies(u) {
		if c.Name == "tt_device" {
			forged.c.Jar.SetCookies(u, []*http.Cookie{{Name: "tt_device", Value: c.Value[:len(c.Value)-2] + "xx"}})
		}
	}
	if res, _ := forged.login("ada@example.com", "correct horse battery"); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a tampered device cookie: %d, want 429", res.StatusCode)
	}

	// The owner's browser signs in.
	res, _ := owner.login("ada@example.com", "correct horse battery")
	if res.StatusCode != http.StatusSeeOther || !owner.signedIn() {
		t.Fatalf("the owner's browser during the attack: %d, want 303 and signed in", res.StatusCode)
	}

	// Its device cookie has a limit of its own.
	owner.post("/", "/logout", nil)
	for i := range 20 {
		res, _ = owner.login("ada@example.com", fmt.Sprintf("typo %d", i))
		if res.StatusCode == http.StatusTooManyRequests {
			break
		}
	}
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("20 wrong passwords from the owner's browser never throttled: %d", res.StatusCode)
	}
}
