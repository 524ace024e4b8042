package handlers_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"ttconsole/handlers"
	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// TestKeySecretsInPathsAreRedacted sends a real key's secret where it does
// not belong (in the path, as a base URL with the key pasted in; as a
// model name) and checks that it reaches neither the log, nor any stored
// request row, nor the answer: each shows the key's display form instead.
func TestKeySecretsInPathsAreRedacted(t *testing.T) {
	logs := &lockedBuffer{}
	srv := testenv.NewServer(t, testenv.Options{Adjust: func(a *handlers.App) {
		a.Log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}})
	ctx := context.Background()
	acct := testenv.FundedKey(t, srv.Store, "ada@example.com", 0, models.KeyInput{Name: "app"})
	secret := acct.Secret
	shown := acct.Key.Display() // sk-tt-abcd…wxyz

	type call struct {
		method, path, bearer, body string
		status                     int
		stored                     bool // the key identifies the call: its account sees it
	}
	calls := []call{
		{"GET", "/v1/" + secret + "/models", secret, "", 404, true},
		{"GET", "/v1/v1/" + secret + "/models", secret, "", 404, true},
		{"GET", "/models/" + secret, secret, "", 404, true},
		{"POST", "/v1/tasks/" + secret, secret, "{}", 404, true},
		{"POST", "/v1/chat/completions", secret, `{"model":"` + secret + `","messages":[{"role":"user","content":"hi"}]}`, 400, true},
		{"GET", "/v1/" + secret + "/models", "", "", 404, false},
	}
	var ids []string
	for _, c := range calls {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		if c.bearer != "" {
			req.Header.Set("Authorization", "Bearer "+c.bearer)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := testenv.Body(t, res)
		if res.StatusCode != c.status {
			t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, res.StatusCode, body, c.status)
		}
		if strings.Contains(body, secret) {
			t.Errorf("%s %s: the answer holds the secret: %s", c.method, c.path, body)
		}
		var shape struct {
			Error struct{ Message string } `json:"error"`
		}
		if json.Unmarshal([]byte(body), &shape) != nil || !strings.Contains(shape.Error.Message, shown) {
			t.Errorf("%s %s: the message does not name the key as %s: %s", c.method, c.path, shown, body)
		}
		id := res.Header.Get("X-TT-Request-ID")
		ids = append(ids, id)
		if !c.stored {
			continue
		}
		row, err := srv.Store.RequestOf(ctx, acct.ID, id)
		if err != nil {
			t.Fatalf("%s %s: the account does not see its call: %v", c.method, c.path, err)
		}
		if row.ErrorBody != strings.TrimSpace(body) {
			t.Errorf("%s %s: stored error body %q, answered %q", c.method, c.path, row.ErrorBody, body)
		}
		if want := strings.ReplaceAll(c.path, secret, shown); row.Path != want {
			t.Errorf("stored path %q, want %q", row.Path, want)
		}
	}

	// No stored text holds the secret, whoever's row it is.
	for _, id := range ids {
		row, err := srv.Store.RequestByID(ctx, id)
		if models.ErrorCode(err) == models.ENOTFOUND {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, text := range []string{row.Path, row.Model, row.ErrorMessage, row.ErrorBody, row.OutcomeDetail} {
			if strings.Contains(text, secret) {
				t.Errorf("request row %s holds the secret: %q", id, text)
			}
		}
	}
	out := logs.String()
	if strings.Contains(out, secret) {
		t.Errorf("the log holds the secret:\n%s", out)
	}
	if !strings.Contains(out, `"path":"/v1/`+shown+`/models"`) {
		t.Errorf("the log does not show the path with the key's display form %s:\n%s", shown, out)
	}
}
