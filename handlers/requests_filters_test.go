package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"ttconsole/internal/seed"
	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// TestRequestsCountsMatches checks the count above the list, which the
// page fetches after it renders: exact for a filter that matches a few,
// "10,000+" past that, whatever the log holds.
func TestRequestsCountsMatches(t *testing.T) {
	srv := testenv.NewServer(t)
	a := rqNewAccount(t, srv, "count@example.com")
	now := time.Now()
	if _, err := seed.Requests(context.Background(), srv.Store, a.id, seed.Options{Requests: 10_050, Span: 48 * time.Hour,
		Now: now, KeyIDs: []string{a.key.ID}, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	count := func(query string) string {
		t.Helper()
		_, page := a.b.get("/requests" + query)
		src := testenv.Doc(t, page).Find(`[data-testid=match-count]`).AttrOr("data-count-src", "")
		if src != "/requests/count"+query {
			t.Fatalf("the count of /requests%s comes from %q", query, src)
		}
		res, body := a.b.get(src)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", src, res.StatusCode)
		}
		return body
	}
	if got := count(""); got != "10,000+ requests" {
		t.Errorf("all 10,050 requests counted as %q, want 10,000+", got)
	}
	// The 5xx rows as the list pages them.
	n5 := int64(len(listCalls(t, srv.Store, a.id, models.RequestFilter{StatusClass: 5})))
	if n5 == 0 || n5 > 10_000 {
		t.Fatalf("5xx rows: %d", n5)
	}
	if got, want := count("?status=5xx"), groupThousands(n5)+" matching requests"; got != want {
		t.Errorf("5xx counted as %q, want %q", got, want)
	}
	if got := count("?status=5xx&to=" + url.QueryEscape(now.Add(-72*time.Hour).UTC().Format(time.RFC3339))); got != "0 matching requests" {
		t.Errorf("a range before every request counted as %q", got)
	}
	one := rqLog(t, srv, models.Request{AccountID: &a.id, Status: 418, Model: "tt-chat-small"}, now)
	if got := count("?status=418"); got != "1 matching request" {
		t.Errorf("one request counted as %q (%s)", got, one.ID)
	}
	if res, _ := a.b.get("/requests/count?status=7xx"); res.StatusCode != http.StatusBadRequest {
		t.Errorf("a count with a bad filter: %d, want 400", res.StatusCode)
	}
	other := rqNewAccount(t, srv, "other@example.com")
	if _, body := other.b.get("/requests/count"); body != "0 requests" {
		t.Errorf("another account's count: %q", body)
	}
}

func groupThousands(n int64) string {
	s := models.FormatUSD(n * models.MicrosPerUSD) // "$1,234.00"
	return strings.TrimSuffix(strings.TrimPrefix(s, "$"), ".00")
}

// TestRequestsTimeFilters checks the time filters: date and time pickers
// that show the range in force, and presets that set it from now while
// keeping the other filters.
func TestRequestsTimeFilters(t *testing.T) {
	srv := testenv.NewServer(t)
	a := rqNewAccount(t, srv, "time@example.com")
	now := time.Now().UTC()
	old := rqLog(t, srv, models.Request{AccountID: &a.id, Status: 502, Model: "tt-chat-small"}, now.Add(-3*time.Hour))
	recent := rqLog(t, srv, models.Request{AccountID: &a.id, Status: 502, Model: "tt-chat-small"}, now.Add(-10*time.Minute))

	_, page := a.b.get("/requests?status=5xx&from=2026-11-01&to=2026-11-30")
	doc := testenv.Doc(t, page)
	for name, want := range map[string]string{"from": "2026-11-01T00:00", "to": "2026-12-01T00:00"} {
		in := doc.Find(`input[name=` + name + `]`)
		if in.AttrOr("type", "") != "datetime-local" || in.AttrOr("value", "") != want {
			t.Errorf("the %s filter is <input type=%q value=%q>, want a date and time picker showing %s",
				name, in.AttrOr("type", ""), in.AttrOr("value", ""), want)
		}
	}

	presets := map[string]string{}
	doc.Find(`[data-testid=range-presets] a`).Each(func(_ int, s *goquery.Selection) {
		presets[s.Text()] = s.AttrOr("href", "")
	})
	for label, ago := range map[string]time.Duration{"hour": time.Hour, "24 hours": 24 * time.Hour,
		"7 days": 7 * 24 * time.Hour, "30 days": 30 * 24 * time.Hour} {
		u, err := url.Parse(presets[label])
		if err != nil || u.Path != "/requests" {
			t.Errorf("preset %q links to %q", label, presets[label])
			continue
		}
		q := u.Query()
		from, err := time.Parse(time.RFC3339, q.Get("from"))
		if err != nil || from.Sub(now.Add(-ago)).Abs() > 2*time.Minute || q.Has("to") || q.Get("status") != "5xx" {
			t.Errorf("preset %q is %v: want from %s ago, no end, status kept", label, q, ago)
		}
	}
	ids, _ := rqPageIDs(t, a.b, presets["hour"], nil)
	if len(ids) != 1 || ids[0] != recent.ID {
		t.Errorf("the last hour lists %v, want only %s (not %s)", ids, recent.ID, old.ID)
	}

	// What a picker sends comes back as it was sent.
	_, page = a.b.get("/requests?from=2026-11-25T14:05&to=2026-11-25T15:00")
	doc = testenv.Doc(t, page)
	if v := doc.Find(`input[name=from]`).AttrOr("value", ""); v != "2026-11-25T14:05" {
		t.Errorf("a picked start shows as %q", v)
	}

	// With local times chosen, the pickers show and read that zone: a
	// preset's instant shows as Paris's clock, and a Paris time picked
	// lists what happened then.
	chooseZone(t, a.b, "/requests", "Europe/Paris")
	_, page = a.b.get("/requests?from=2026-11-25T13:05:00Z")
	doc = testenv.Doc(t, page)
	if v, label := doc.Find(`input[name=from]`).AttrOr("value", ""), doc.Find(`label[for=f-from]`).Text(); v != "2026-11-25T14:05" || !strings.Contains(label, "Europe/Paris") {
		t.Errorf("in Paris, 13:05 UTC shows as %q under %q, want 2026-11-25T14:05", v, label)
	}
	paris, _ := time.LoadLocation("Europe/Paris")
	picked := recent.CreatedAt.In(paris).Add(-time.Minute).Format("2006-01-02T15:04")
	ids, _ = rqPageIDs(t, a.b, "/requests?from="+picked, nil)
	if len(ids) != 1 || ids[0] != recent.ID {
		t.Errorf("from %s in Paris lists %v, want only %s", picked, ids, recent.ID)
	}
}

// TestRequestsClearFilters checks the "Clear filters" link: there when a
// filter is set, leading to the whole log.
func TestRequestsClearFilters(t *testing.T) {
	srv := testenv.NewServer(t)
	a := rqNewAccount(t, srv, "clear@example.com")
	rqLog(t, srv, models.Request{AccountID: &a.id, Status: 200, Model: "tt-chat-small"}, time.Now())
	_, page := a.b.get("/requests")
	if testenv.Doc(t, page).Find(`[data-testid=clear-filters]`).Length() != 0 {
		t.Error("an unfiltered list offers to clear filters")
	}
	_, page = a.b.get("/requests?status=5xx&model=tt-chat-small")
	if href := testenv.Doc(t, page).Find(`[data-testid=clear-filters]`).AttrOr("href", ""); href != "/requests" {
		t.Fatalf("Clear filters links to %q, want /requests", href)
	}
}

// TestRequestsFindByTaskID checks that a task id, or a task's JSON
// pasted whole, finds the call that created the task, and that another
// account's task is not found.
func TestRequestsFindByTaskID(t *testing.T) {
	p := newPlatform(t)
	r, task := p.createTask(p.secret, map[string]string{"sim_duration_ms": "10"})
	if r.res.StatusCode != http.StatusAccepted || !strings.HasPrefix(task.ID, "task_") {
		t.Fatalf("create a task: %d %s", r.res.StatusCode, r.body)
	}
	b := rqConsole(t, p)
	body, _ := json.Marshal(task)
	for _, q := range []string{task.ID, " " + task.ID + "\n", string(body)} {
		res, _ := b.get("/requests?q=" + url.QueryEscape(q))
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/requests/"+r.id() {
			t.Errorf("looking up %q: %d to %q, want the creating call %s", q, res.StatusCode, res.Header.Get("Location"), r.id())
		}
	}

	_, _, otherSecret := p.newAccount("other@example.com", 10*models.MicrosPerUSD, models.KeyInput{Name: "other", RPM: "600"})
	_, theirs := p.createTask(otherSecret, map[string]string{"sim_duration_ms": "10"})
	res, page := b.get("/requests?q=" + theirs.ID)
	if res.StatusCode != http.StatusNotFound || !strings.Contains(page, "No request with this id in your account.") {
		t.Errorf("another account's task: %d", res.StatusCode)
	}
	p.waitTask(task.ID)
}

// TestKeyPageLinksToItsRequests checks that a key's page links to the
// Requests page filtered to that key, which lists its calls alone.
func TestKeyPageLinksToItsRequests(t *testing.T) {
	p := newPlatform(t)
	other, otherSecret := p.newKey(p.account, models.KeyInput{Name: "other", RPM: "600"})
	mine := p.chat(p.secret, 10, nil)
	p.chat(otherSecret, 10, nil)
	b := rqConsole(t, p)
	_, page := b.get("/keys/" + p.key.ID)
	href := testenv.Doc(t, page).Find(`a[data-testid=key-requests]`).AttrOr("href", "")
	if href != "/requests?key="+p.key.ID {
		t.Fatalf("the key's page links to %q, want its requests", href)
	}
	ids, _ := rqPageIDs(t, b, href, nil)
	if len(ids) != 1 || ids[0] != mine.id() {
		t.Errorf("the key's requests are %v, want only %s (not %s's)", ids, mine.id(), other.Name)
	}
}
