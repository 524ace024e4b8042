package handlers_test

import (
	"encoding/csv"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// usageFixture is a signed-in account whose two keys made calls to three
// models, one of them failing upstream, beside another account's calls.
func usageFixture(t *testing.T) (*platform, *browser, *models.APIKey) {
	t.Helper()
	p := newPlatform(t)
	batch, batchSecret := p.newKey(p.account, models.KeyInput{Name: "nightly batch", RPM: "600"})
	for i := range 3 {
		if r := p.chat(p.secret, 40, map[string]string{"sim_output_tokens": strconv.Itoa(10 + i)}); r.res.StatusCode != 200 {
			t.Fatalf("chat: %d %s", r.res.StatusCode, r.body)
		}
	}
	if r := p.do("POST", "/v1/chat/completions", batchSecret, chatBody("tt-chat-large", 40, nil)); r.res.StatusCode != 200 {
		t.Fatalf("chat large: %d %s", r.res.StatusCode, r.body)
	}
	if r := p.chat(p.secret, 40, map[string]string{"sim_status": "502"}); r.res.StatusCode != 502 {
		t.Fatalf("failing chat: %d", r.res.StatusCode)
	}
	if r := p.do("POST", "/v1/embeddings", batchSecret, `{"model":"tt-embed-1","input":"hello"}`); r.res.StatusCode != 200 {
		t.Fatalf("embeddings: %d %s", r.res.StatusCode, r.body)
	}
	_, _, otherSecret := p.newAccount("other@example.com", models.MicrosPerUSD, models.KeyInput{Name: "other", RPM: "600"})
	p.do("POST", "/v1/chat/completions", otherSecret, chatBody("tt-chat-large", 500, map[string]string{"sim_output_tokens": "400"}))

	b := newBrowser(t, p.srv)
	if res, _ := b.login("owner@example.com", testenv.Password); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", res.StatusCode)
	}
	return p, b, batch
}

// charged is what the ledger charged an account, in micro-dollars.
func (p *platform) charged(account string) int64 {
	p.t.Helper()
	var sum int64
	for _, e := range ledgerCharges(p.t, p.srv.Store, account) {
		sum -= e.AmountMicros
	}
	return sum
}

func TestUsagePageShowsWhereTheMoneyWent(t *testing.T) {
	p, b, batch := usageFixture(t)
	spent := p.charged(p.account)

	res, page := b.get("/usage")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/usage: %d", res.StatusCode)
	}
	doc := testenv.Doc(t, page)
	if nav := doc.Find(`nav.mainnav a[aria-current=page]`).Text(); nav != "Usage" {
		t.Fatalf("the navigation marks %q as the current page", nav)
	}
	totals := map[string]string{}
	for _, id := range []string{"usage-requests", "usage-error-rate", "usage-prompt-tokens", "usage-completion-tokens", "usage-spend"} {
		totals[id] = strings.TrimSpace(doc.Find(`[data-testid=` + id + `]`).Text())
	}
	if totals["usage-requests"] != "6" || totals["usage-error-rate"] != "16.7%" || totals["usage-spend"] != models.FormatUSD(spent) {
		t.Fatalf("totals %v, want 6 requests, 16.7%% errors and %s spent (the ledger's charges, not the other account's)",
			totals, models.FormatUSD(spent))
	}
	if doc.Find(`nav.presets a[aria-current]`).Text() != "30 d" {
		t.Fatalf("the default range is not marked as the 30 days preset")
	}

	lines := usageLines(doc)
	if len(lines) != 3 || lines[0].label != "tt-chat-large" && lines[0].label != "tt-chat-small" {
		t.Fatalf("lines by model: %+v", lines)
	}
	byModel := map[string]usageLine{}
	for _, l := range lines {
		byModel[l.label] = l
	}
	if byModel["tt-chat-small"].requests != "4" || byModel["tt-chat-small"].errorRate != "25.0%" ||
		byModel["tt-embed-1"].requests != "1" || byModel["tt-chat-large"].requests != "1" {
		t.Fatalf("lines by model: %+v", lines)
	}
	// A line's link lists that model's calls of the same range.
	link, err := url.Parse(byModel["tt-chat-small"].link)
	if err != nil || link.Path != "/requests" || link.Query().Get("model") != "tt-chat-small" ||
		link.Query().Get("from") == "" || link.Query().Get("to") == "" {
		t.Fatalf("the tt-chat-small line links to %q", byModel["tt-chat-small"].link)
	}
	if _, list := b.get(link.String()); testenv.Doc(t, list).Find(`[data-testid=requests-table] tbody tr`).Length() != 4 {
		t.Fatalf("the linked Requests list does not show the 4 tt-chat-small calls")
	}

	_, page = b.get("/usage?group=key")
	lines = usageLines(testenv.Doc(t, page))
	if len(lines) != 2 || lines[0].label == lines[1].label {
		t.Fatalf("lines by key: %+v", lines)
	}
	for _, l := range lines {
		u, _ := url.Parse(l.link)
		switch l.label {
		case "default":
			if l.requests != "4" || u.Query().Get("key") != p.key.ID {
				t.Fatalf("the default key's line: %+v", l)
			}
		case "nightly batch":
			if l.requests != "2" || u.Query().Get("key") != batch.ID {
				t.Fatalf("the batch key's line: %+v", l)
			}
		default:
			t.Fatalf("a line for %q", l.label)
		}
	}

	_, page = b.get("/usage?group=day&granularity=hour&from=" + url.QueryEscape(time.Now().UTC().Add(-47*time.Hour).Format("2006-01-02T15:04")))
	doc = testenv.Doc(t, page)
	lines = usageLines(doc)
	if len(lines) != 1 || lines[0].requests != "6" {
		t.Fatalf("lines by day: %+v", lines)
	}
	if bars := doc.Find(`[data-testid=usage-chart] svg g.bar`).Length(); bars != 48 {
		t.Fatalf("%d hourly bars over 48 hours", bars)
	}
	if total := strings.TrimSpace(doc.Find(`[data-testid=usage-table-spend]`).Text()); total != models.FormatUSD(spent) {
		t.Fatalf("the table's total spend is %s, want %s", total, models.FormatUSD(spent))
	}
}

type usageLine struct{ label, requests, errorRate, spend, link string }

func usageLines(doc *goquery.Document) []usageLine {
	var out []usageLine
	doc.Find(`[data-testid=usage-table] tbody tr`).Each(func(_ int, tr *goquery.Selection) {
		td := tr.Find("td")
		link, _ := tr.Find("a").Attr("href")
		out = append(out, usageLine{
			label: strings.TrimSpace(td.Eq(0).Text()), requests: td.Eq(1).Text(), errorRate: td.Eq(2).Text(),
			spend: td.Eq(5).Text(), link: link,
		})
	})
	return out
}

func TestUsageRefusesBadQueriesBesideTheirFields(t *testing.T) {
	_, b, _ := usageFixture(t)
	res, page := b.get("/usage?from=yesterday&to=2026-11-01&group=colour&granularity=week")
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad values: %d, want 400", res.StatusCode)
	}
	doc := testenv.Doc(t, page)
	for _, field := range []string{"from", "group", "granularity"} {
		msg := strings.TrimSpace(doc.Find(`.field-error[data-field=` + field + `]`).Text())
		if msg == "" {
			t.Errorf("no message beside %s", field)
		}
		if inv, _ := doc.Find(`#f-` + field).Attr("aria-invalid"); inv != "true" {
			t.Errorf("the %s field is not marked invalid", field)
		}
		if v, _ := doc.Find(`input#f-` + field).Attr("value"); field == "from" && v != "yesterday" {
			t.Errorf("the from field shows %q, not what was typed", v)
		}
	}
	if doc.Find(`[data-testid=usage-totals]`).Length() != 0 {
		t.Error("totals shown for a query that was refused")
	}

	res, page = b.get("/usage?from=2026-11-10&to=2026-11-01")
	if msg := testenv.Doc(t, page).Find(`.field-error[data-field=to]`).Text(); res.StatusCode != 400 || !strings.Contains(msg, "after its start") {
		t.Fatalf("an end before the start: %d %q", res.StatusCode, msg)
	}

	for q, field := range map[string]string{
		"granularity=week": "granularity",
		"group=colour":     "group",
		"from=2026-02-30":  "from",
		"from=2026-01-01&to=2026-03-01&granularity=hour": "granularity",
	} {
		res, body := b.get("/usage.csv?" + q)
		if res.StatusCode != http.StatusBadRequest || !strings.HasPrefix(body, field+": ") ||
			!strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("/usage.csv?%s: %d %q, want a plain 400 naming %s", q, res.StatusCode, body, field)
		}
	}
}

func TestUsageCSVAddsUpToTheLedger(t *testing.T) {
	p, b, batch := usageFixture(t)
	for _, group := range []string{"model", "key", "day"} {
		res, body := b.get("/usage.csv?granularity=hour&from=" + url.QueryEscape(time.Now().UTC().Add(-5*time.Hour).Format(time.RFC3339)) +
			"&group=" + group)
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") ||
			!strings.Contains(res.Header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("%s: %d %v", group, res.StatusCode, res.Header)
		}
		recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatalf("%s: not valid CSV: %v", group, err)
		}
		col := map[string]int{}
		for i, h := range recs[0] {
			col[h] = i
		}
		var requests, spend int64
		values := map[string]bool{}
		for _, r := range recs[1:] {
			n, _ := strconv.ParseInt(r[col["requests"]], 10, 64)
			s, _ := strconv.ParseInt(r[col["spend_micros"]], 10, 64)
			requests, spend = requests+n, spend+s
			values[r[col["group_value"]]+"="+r[col["group_label"]]] = true
			if r[col["group"]] != group {
				t.Fatalf("%s: a line grouped by %s", group, r[col["group"]])
			}
		}
		if requests != 6 || spend != p.charged(p.account) {
			t.Fatalf("%s: the lines add up to %d requests and %d µ$, want 6 and the ledger's %d", group, requests, spend, p.charged(p.account))
		}
		if group == "key" && !values[batch.ID+"=nightly batch"] {
			t.Fatalf("no line for the batch key by its id and name: %v", values)
		}
		if group == "model" && !values["tt-embed-1=tt-embed-1"] {
			t.Fatalf("no line for tt-embed-1: %v", values)
		}
	}

	// Signed out: the sign-in page, not the numbers.
	res, err := p.srv.Client().Get(p.srv.URL + "/usage.csv")
	if err != nil {
		t.Fatal(err)
	}
	testenv.Body(t, res)
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
		t.Fatalf("signed out: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
}
