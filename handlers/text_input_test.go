package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestTextNoDatabaseCanStore: a NUL byte, or bytes that are not UTF-8,
// in a path, a query, a form field or a JSON string (PostgreSQL refuses
// both in text) get the error any other bad input gets — never a 500 —
// and every identified call is still in the request log.
func TestTextNoDatabaseCanStore(t *testing.T) {
	p := newPlatform(t)
	cut := strings.Repeat("a", 99) + "é" // 101 bytes: a cut at 100 falls inside é

	for _, path := range []string{"/v1/requests/req_%00", "/v1/requests/req_%C3", "/v1/tasks/task_%00", "/v1/tasks/task_%FF"} {
		r := p.do("GET", path, p.secret, "")
		if typ, _ := errorOf(t, r); r.res.StatusCode != http.StatusNotFound || typ != "not_found" {
			t.Errorf("GET %s: %d %s, want 404 not_found", path, r.res.StatusCode, r.body)
		}
	}
	if r := p.do("POST", "/v1/tasks/task_%00/cancel", p.secret, ""); r.res.StatusCode != http.StatusNotFound {
		t.Errorf("cancel task_%%00: %d %s, want 404", r.res.StatusCode, r.body)
	}
	for name, body := range map[string]string{
		"a NUL in the model":      `{"model":"tt\u0000x","messages":[{"role":"user","content":"Hi"}]}`,
		"a model cut in a letter": `{"model":"` + cut + `","messages":[{"role":"user","content":"Hi"}]}`,
	} {
		r := p.do("POST", "/v1/chat/completions", p.secret, body)
		if r.res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", name, r.res.StatusCode, r.body)
			continue
		}
		if got := p.do("GET", "/v1/requests/"+r.id(), p.secret, ""); got.res.StatusCode != http.StatusOK {
			t.Errorf("%s: the call's request %s is not in the log: %d %s", name, r.id(), got.res.StatusCode, got.body)
			continue
		}
		if row := p.row(p.account, r.id()); !utf8.ValidString(row.Model+row.ErrorMessage) || strings.ContainsRune(row.Model+row.ErrorMessage, 0) {
			t.Errorf("%s: the log keeps the model %q and the message %q, not plain text", name, row.Model, row.ErrorMessage)
		}
	}
	r := p.do("GET", "/v1/"+strings.Repeat("b", 507)+"%C3%A9", p.secret, "")
	if r.res.StatusCode != http.StatusNotFound {
		t.Errorf("a long unknown path: %d, want 404", r.res.StatusCode)
	} else if got := p.do("GET", "/v1/requests/"+r.id(), p.secret, ""); got.res.StatusCode != http.StatusOK {
		t.Errorf("a long unknown path: its request %s is not in the log: %d %s", r.id(), got.res.StatusCode, got.body)
	}

	b := newBrowser(t, p.srv)
	b.signup("ada@example.com", "correct horse battery")
	for _, path := range []string{"/requests/req_%00", "/keys/key_%00", "/billing/payments/pay_%00"} {
		if res, _ := b.get(path); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, res.StatusCode)
		}
	}
	for _, q := range []string{"model=%00", "q=req_%00", "key=%FF", "status=%00", "outcome=%C3"} {
		if res, _ := b.get("/requests?" + q); res.StatusCode >= 500 {
			t.Errorf("GET /requests?%s: %d", q, res.StatusCode)
		}
		if res, _ := b.get("/requests.csv?" + q); res.StatusCode >= 500 {
			t.Errorf("GET /requests.csv?%s: %d", q, res.StatusCode)
		}
	}
	res, page, _ := b.createKey(url.Values{"name": {"lap\x00top"}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(page, `field &#34;name&#34; holds a NUL byte`) {
		t.Errorf("a key named with a NUL: %d, want 400 naming the field\n%s", res.StatusCode, page)
	}
	u, err := p.srv.Store.UserByEmail(t.Context(), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := p.srv.Store.APIKeysOf(t.Context(), u.AccountID); err != nil || len(keys) != 0 {
		t.Errorf("keys after the refused name: %v %v", keys, err)
	}
}
