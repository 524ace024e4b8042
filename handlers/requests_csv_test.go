package handlers_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// TestRequestsCSVGuardsFormulasBehindLineBreaksAndSpaces exports cells
// that start with a line break, a tab or spaces before a formula: a
// spreadsheet skips those and runs the formula, so each cell must start
// with the apostrophe guard, whatever the export writes for the line break.
func TestRequestsCSVGuardsFormulasBehindLineBreaksAndSpaces(t *testing.T) {
	srv := testenv.NewServer(t)
	a := rqNewAccount(t, srv, "ada@example.com")
	ctx := context.Background()
	if _, err := srv.Store.Credit(ctx, a.id, models.MicrosPerUSD, models.LedgerAdjustment, "test funds", models.LedgerRef{}); err != nil {
		t.Fatal(err)
	}
	hostile := []string{"\n=1+1", "\r=1+1", "\r\n=1+1", "\t=1+1", " =1+1", "  +1", "\u00a0=1+1", "\u3000@SUM(A1)", "\n-1", "\v=1"}
	// As a caller would put them in the log: a model name of a real call.
	for _, m := range hostile {
		body, _ := json.Marshal(map[string]any{"model": m, "messages": []map[string]string{{"role": "user", "content": "hi"}}})
		req, _ := http.NewRequest("POST", srv.URL+"/v1/chat/completions", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+a.secret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if b := testenv.Body(t, res); res.StatusCode != http.StatusBadRequest {
			t.Fatalf("model %q: %d %s, want a 400 in the log", m, res.StatusCode, b)
		}
	}
	// And as error text that starts the same way.
	for i, m := range hostile {
		rqLog(t, srv, models.Request{AccountID: &a.id, KeyID: &a.key.ID, Status: 502, ErrorType: "upstream_error",
			ErrorMessage: m, Model: "tt-chat-small"}, time.Now().Add(-time.Hour+time.Duration(i)*time.Second))
	}
	// Cells that only look alike stay as they are.
	safe := []string{" lead", "\u00a0nbsp", "two\nlines", "plain"}
	for i, m := range safe {
		rqLog(t, srv, models.Request{AccountID: &a.id, KeyID: &a.key.ID, Status: 502, ErrorType: "upstream_error",
			ErrorMessage: m, Model: "tt-chat-small"}, time.Now().Add(-2*time.Hour+time.Duration(i)*time.Second))
	}

	res, body := a.b.get("/requests.csv")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("export: %d", res.StatusCode)
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("not valid RFC 4180: %v", err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	guarded := map[string]bool{} // by text: true only if every cell of it was guarded
	for _, rec := range recs[1:] {
		for _, name := range []string{"model", "error_message"} {
			rest, ok := strings.CutPrefix(rec[col[name]], "'")
			if g, seen := guarded[rest]; seen {
				ok = ok && g
			}
			guarded[rest] = ok
		}
	}
	// encoding/csv writes a line break as CRLF and drops a lone CR, and
	// its reader reads CRLF back as LF.
	exported := strings.NewReplacer("\r\n", "\n", "\r", "")
	for _, m := range hostile {
		m = exported.Replace(m)
		if g, ok := guarded[m]; !ok || !g {
			t.Errorf("cell %q: exported without the ' guard (present %v)", m, ok)
		}
	}
	for _, m := range safe {
		if g, ok := guarded[m]; !ok || g {
			t.Errorf("cell %q: guarded %v (present %v), want it exported as it is", m, g, ok)
		}
	}
	// What a spreadsheet reads first in the file: no quoted cell opens
	// with a line break.
	for _, bad := range []string{",\"\r\n", ",\"\n", ",\"\r", ",\"\t=", ",\" ="} {
		if strings.Contains(body, bad) {
			t.Errorf("the export has a quoted cell opening with %q", bad[2:])
		}
	}
}
