package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"ttconsole/internal/testenv"
)

// TestNotFoundPages checks unknown paths: a signed-in person's 404 page
// has their menu, a signed-out one's the login links; a form posted to an
// unknown path is a 404, not a CSRF refusal; and a program that lost its
// /v1 gets its JSON 404 with no cookie.
func TestNotFoundPages(t *testing.T) {
	srv := testenv.NewServer(t)
	a := rqNewAccount(t, srv, "lost@example.com")

	res, page := a.b.get("/no/such/page")
	doc := testenv.Doc(t, page)
	if res.StatusCode != http.StatusNotFound || doc.Find(`nav.mainnav a[href="/keys"]`).Length() != 1 ||
		doc.Find(`[data-testid=account-email]`).Text() != "lost@example.com" {
		t.Errorf("signed in: %d, without the signed-in header", res.StatusCode)
	}
	if tok := doc.Find(`form[action="/logout"] input[name=_csrf]`).AttrOr("value", ""); tok == "" {
		t.Error("the 404 page's Log out has no form token")
	}
	res, _ = a.b.c.PostForm(srv.URL+"/no/such/form", url.Values{"x": {"1"}})
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("a form posted to an unknown path: %d, want 404", res.StatusCode)
	}

	res, page = newBrowser(t, srv).get("/no/such/page")
	if res.StatusCode != http.StatusNotFound || !strings.Contains(page, `href="/login"`) || strings.Contains(page, "lost@example.com") {
		t.Errorf("signed out: %d, want the signed-out header", res.StatusCode)
	}

	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/chat/completions", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer sk-tt-nothing")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := testenv.Body(t, res)
	if res.StatusCode != http.StatusNotFound || !strings.Contains(body, `"not_found"`) || len(res.Cookies()) != 0 {
		t.Errorf("an API call without /v1: %d %s, cookies %v", res.StatusCode, body, res.Cookies())
	}
	res, err = http.Get(srv.URL + "/models")
	if err != nil {
		t.Fatal(err)
	}
	testenv.Body(t, res)
	if res.StatusCode != http.StatusNotFound || len(res.Cookies()) != 0 {
		t.Errorf("GET /models: %d, cookies %v", res.StatusCode, res.Cookies())
	}
}
