package handlers_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// TestConsoleErrorsUnderRequestsAndAccountAreHTML: the console's own paths
// under /requests and /account share their first segment with gateway
// paths (/v1/requests, /v1/account), but their errors are the console's
// HTML page and none of them is logged as a gateway call; a gateway path
// that lost its /v1 still gets the JSON 404 with the right URL.
func TestConsoleErrorsUnderRequestsAndAccountAreHTML(t *testing.T) {
	srv := testenv.NewServer(t)
	a := rqNewAccount(t, srv, "ada@example.com")
	refused := rqLog(t, srv, models.Request{AccountID: &a.id, KeyID: &a.key.ID, Status: 400, ErrorType: "invalid_request",
		ErrorMessage: "Unknown model", Model: "gpt-4"}, time.Now().Add(-time.Minute))
	noIP := rqLog(t, srv, models.Request{AccountID: &a.id, KeyID: &a.key.ID, Status: 403, ErrorType: "ip_not_allowed",
		ErrorMessage: "Requests from ? are not allowed", Model: "tt-chat-small"}, time.Now().Add(-2*time.Minute))
	rows := len(listCalls(t, srv.Store, a.id, models.RequestFilter{}))

	post := func(path string, vals url.Values) (*http.Response, string) {
		res, err := a.b.c.PostForm(srv.URL+path, vals)
		if err != nil {
			t.Fatal(err)
		}
		return res, testenv.Body(t, res)
	}
	type answer struct {
		name   string
		do     func() (*http.Response, string)
		status int
		says   string
	}
	cases := []answer{
		{"a fix-it for a request without that error", func() (*http.Response, string) {
			return a.b.post("/requests/"+refused.ID, "/requests/"+refused.ID+"/fix/allow-ip", nil)
		}, 404, "Page not found"},
		{"a fix-it that cannot be done", func() (*http.Response, string) {
			return a.b.post("/requests/"+noIP.ID, "/requests/"+noIP.ID+"/fix/allow-ip", nil)
		}, 400, "no valid source IP"},
		{"a password form without its CSRF token", func() (*http.Response, string) {
			return post("/account/password", url.Values{"current_password": {rqPassword}, "new_password": {"another long password"}})
		}, 403, "This form has expired"},
		{"a password form with the wrong password", func() (*http.Response, string) {
			return a.b.post("/account", "/account/password", url.Values{"current_password": {"wrong"}, "new_password": {"another long password"}})
		}, 422, "That is not your current password"},
		{"an unknown page under /requests", func() (*http.Response, string) { return a.b.get("/requests/unknown/x") }, 404, "Page not found"},
		{"an unknown page under /account", func() (*http.Response, string) { return a.b.get("/account/nope") }, 404, "Page not found"},
		{"an unknown request", func() (*http.Response, string) { return a.b.get("/requests/req_nope") }, 404, "No request with this id"},
	}
	for _, tc := range cases {
		res, body := tc.do()
		notStored(t, srv.Store, res.Header.Get("X-TT-Request-ID"), tc.name)
		if res.StatusCode != tc.status || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %s, want %d text/html: %.200s", tc.name, res.StatusCode, res.Header.Get("Content-Type"), tc.status, body)
			continue
		}
		doc := testenv.Doc(t, body)
		if !strings.Contains(doc.Text(), tc.says) {
			t.Errorf("%s: the page does not say %q: %.300s", tc.name, tc.says, doc.Text())
		}
		if tc.status != 422 && doc.Find(".error-page [data-testid=error-request-id]").Text() != res.Header.Get("X-TT-Request-ID") {
			t.Errorf("%s: not the console's error page with the request id", tc.name)
		}
	}
	if n := len(listCalls(t, srv.Store, a.id, models.RequestFilter{})); n != rows {
		t.Errorf("%d request-log rows written by console pages", n-rows)
	}

	// A gateway path without its /v1 is still the gateway's 404.
	res, err := http.Get(srv.URL + "/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	body := testenv.Body(t, res)
	var shape struct {
		Error struct{ Type, Message string } `json:"error"`
	}
	if res.StatusCode != 404 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") ||
		json.Unmarshal([]byte(body), &shape) != nil || shape.Error.Type != "not_found" ||
		!strings.Contains(shape.Error.Message, "missing /v1. Use "+srv.URL+"/v1/chat/completions") {
		t.Fatalf("GET /chat/completions: %d %s %s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
}
