package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"ttconsole/internal/testenv"
	"ttconsole/migrations"
	"ttconsole/models"
)

// TestRequestsOfEarlierMonthsAreFound pastes request ids of the months
// before this one, and one dated decades ahead, into the console and the
// self-service API: each is found and shown, and the Requests page of last
// month lists last month's calls and no others. (That on PostgreSQL each
// lives in its month's partition is models' TestRequestsLandInTheirMonth.)
func TestRequestsOfEarlierMonthsAreFound(t *testing.T) {
	p := newPlatform(t)
	ctx := context.Background()
	m0 := migrations.RequestPartitionOf(time.Now()).Month
	if _, err := p.srv.Store.EnsureRequestPartitions(ctx, m0.AddDate(0, -3, 0)); err != nil {
		t.Fatal(err)
	}
	logAt := func(at time.Time) string {
		r := &models.Request{ID: models.NewRequestIDAt(at), AccountID: &p.account, KeyID: &p.key.ID, Method: "POST",
			Path: "/v1/chat/completions", Model: "tt-chat-small", Status: 403, ErrorType: "ip_not_allowed",
			ErrorMessage: "Calls from 203.0.113.9 are not allowed with this API key.", ClientIP: "203.0.113.9", CreatedAt: at}
		if err := p.srv.Store.LogRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	lastMonth := []string{logAt(m0.AddDate(0, -1, 0)), logAt(m0.AddDate(0, 0, -1))}
	earlier := logAt(m0.AddDate(0, -3, 2))
	far := logAt(time.Now().AddDate(30, 0, 0))
	now := p.chat(p.secret, 16, nil)
	if now.res.StatusCode != http.StatusOK {
		t.Fatalf("a call now: %d %s", now.res.StatusCode, now.body)
	}

	b := newBrowser(t, p.srv)
	if res, _ := b.login("owner@example.com", testenv.Password); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", res.StatusCode)
	}
	for _, id := range append([]string{earlier, far, now.id()}, lastMonth...) {
		res, page := b.get("/requests/" + id)
		if res.StatusCode != http.StatusOK || !strings.Contains(page, id) {
			t.Fatalf("GET /requests/%s: %d", id, res.StatusCode)
		}
		if res, _ := b.get("/requests?q=" + id); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/requests/"+id {
			t.Fatalf("searching %s: %d to %q, want its page", id, res.StatusCode, res.Header.Get("Location"))
		}
		api := p.do("GET", "/v1/requests/"+id, p.secret, "")
		var js struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(api.body), &js); err != nil || api.res.StatusCode != http.StatusOK || js.ID != id {
			t.Fatalf("GET /v1/requests/%s: %d %s", id, api.res.StatusCode, api.body)
		}
	}

	from, to := m0.AddDate(0, -1, 0).Format("2006-01-02"), m0.AddDate(0, 0, -1).Format("2006-01-02")
	res, page := b.get("/requests?from=" + from + "&to=" + to)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("last month's page: %d", res.StatusCode)
	}
	for _, id := range lastMonth {
		if !strings.Contains(page, id) {
			t.Errorf("last month's page does not list %s", id)
		}
	}
	for _, id := range []string{earlier, far, now.id()} {
		if strings.Contains(page, id) {
			t.Errorf("last month's page lists %s", id)
		}
	}
}
