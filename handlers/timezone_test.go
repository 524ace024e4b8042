package handlers_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// chooseZone presses the header's zone switch with zone, from path.
func chooseZone(t *testing.T, b *browser, path, zone string) *http.Response {
	t.Helper()
	res, _ := b.post(path, "/time-zone", url.Values{"zone": {zone}, "back": {path}})
	return res
}

// consolePaths are the signed-in pages that show times.
func consolePaths(r *models.Request) []string {
	return []string{"/", "/requests", "/requests/" + r.ID, "/keys/" + *r.KeyID, "/billing"}
}

var (
	clockRe = regexp.MustCompile(`(?:^|[^\d.:])\d{1,2}:\d{2}\b`)
	// A zone after a clock: an abbreviation (UTC, JST, CET) or an offset.
	zonedRe = regexp.MustCompile(`\d{1,2}:\d{2}(:\d{2}(\.\d{3})?)? (UTC|[A-Z]{3,5}\b|UTC[+-]\d{2}:\d{2})`)
)

// TestTimesCarryTheirZone: every absolute time on every console page
// names its zone, in UTC by default, and no hover shows a bare clock.
func TestTimesCarryTheirZone(t *testing.T) {
	a, r := moneyAccount(t)
	for _, zone := range []string{"", "Asia/Tokyo"} {
		if zone != "" {
			if res := chooseZone(t, a.b, "/", zone); res.StatusCode != http.StatusSeeOther {
				t.Fatalf("choose %s: %d", zone, res.StatusCode)
			}
		}
		for _, path := range consolePaths(r) {
			_, page := a.b.get(path)
			doc := testenv.Doc(t, page)
			times := doc.Find("main time")
			if times.Length() == 0 {
				t.Errorf("%s shows no time", path)
			}
			times.Each(func(_ int, s *goquery.Selection) {
				text := strings.TrimSpace(s.Text())
				want := " UTC"
				if zone != "" {
					want = " JST"
				}
				if !strings.HasSuffix(text, want) || !zonedRe.MatchString(text) {
					t.Errorf("%s (zone %q): a time reads %q, want it in%s", path, zone, text, want)
				}
			})
			doc.Find("[title]").Each(func(_ int, s *goquery.Selection) {
				title, _ := s.Attr("title")
				if clockRe.MatchString(title) && !zonedRe.MatchString(title) {
					t.Errorf("%s (zone %q): a hover shows a time without its zone: %q", path, zone, title)
				}
			})
		}
	}
	// The request's time in Tokyo is nine hours ahead of UTC, and the
	// hover says so and gives the moment in UTC too.
	_, page := a.b.get("/requests/" + r.ID)
	arrived := testenv.Doc(t, page).Find(`[data-testid=arrived] time`)
	want := r.CreatedAt.In(time.FixedZone("JST", 9*3600)).Format("2006-01-02 15:04:05.000") + " JST"
	if got := strings.TrimSpace(arrived.Text()); got != want {
		t.Errorf("arrived %q, want %q", got, want)
	}
	title, _ := arrived.Attr("title")
	if !strings.Contains(title, "Asia/Tokyo, UTC+09:00") || !strings.Contains(title, r.CreatedAt.UTC().Format("15:04:05.000")+" UTC") {
		t.Errorf("arrived hover %q lacks the zone's name and offset and the UTC time", title)
	}
	// What support copies stays in UTC.
	if s := testenv.Doc(t, page).Find(`[data-testid=support-text]`).Text(); !strings.Contains(s, "Time (UTC): "+r.CreatedAt.UTC().Format("2006-01-02 15:04:05.000")+" UTC") {
		t.Errorf("support text %q is not in UTC", s)
	}
}

// TestZoneSwitch: the switch keeps a valid choice and returns to the page
// it was pressed on; anything that is not a zone name is a 400 that
// changes nothing, and it never sends anyone off the console.
func TestZoneSwitch(t *testing.T) {
	srv := testenv.NewServer(t)
	a := rqNewAccount(t, srv, "ada@example.com")
	_, page := a.b.get("/keys")
	sw := testenv.Doc(t, page).Find(`[data-testid=tz-switch]`)
	if v, _ := sw.Find(`[data-testid=tz-utc]`).Attr("aria-pressed"); v != "true" {
		t.Errorf("UTC is not the pressed choice by default: %q", v)
	}
	if _, hidden := sw.Find(`[data-testid=tz-local]`).Attr("hidden"); !hidden {
		t.Error("without a script the Local button, which cannot know the zone, is shown")
	}
	for _, bad := range []string{"Mars/Olympus_Mons", "Local", "../../../etc/passwd", "/etc/localtime", "Europe/Paris; x", "<script>", strings.Repeat("A", 80), ""} {
		res, body := a.b.post("/keys", "/time-zone", url.Values{"zone": {bad}, "back": {"/keys"}})
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "time zone") {
			t.Errorf("zone %q: %d, want 400 with a message about time zones", bad, res.StatusCode)
		}
	}
	_, page = a.b.get("/keys")
	if v, _ := testenv.Doc(t, page).Find(`[data-testid=tz-utc]`).Attr("aria-pressed"); v != "true" {
		t.Error("a refused zone changed the choice")
	}
	for back, want := range map[string]string{"/requests?status=4xx": "/requests?status=4xx", "//evil.example/": "/",
		"https://evil.example/": "/", "/\\evil.example": "/", "": "/"} {
		res, _ := a.b.post("/keys", "/time-zone", url.Values{"zone": {"Europe/Paris"}, "back": {back}})
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != want {
			t.Errorf("back %q: %d to %q, want 303 to %q", back, res.StatusCode, res.Header.Get("Location"), want)
		}
	}
	_, page = a.b.get("/keys")
	local := testenv.Doc(t, page).Find(`[data-testid=tz-local]`)
	if v, _ := local.Attr("aria-pressed"); v != "true" {
		t.Error("after choosing Europe/Paris, Local is not the pressed choice")
	}
	if v, _ := local.Attr("value"); v != "Europe/Paris" {
		t.Errorf("Local carries %q", v)
	}
	if res := chooseZone(t, a.b, "/keys", "UTC"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("back to UTC: %d", res.StatusCode)
	}
	_, page = a.b.get("/keys")
	if v, _ := testenv.Doc(t, page).Find(`[data-testid=tz-utc]`).Attr("aria-pressed"); v != "true" {
		t.Error("UTC could not be chosen again")
	}
}

// TestFiltersFollowTheZone: the Requests filters' dates are days of the
// zone the console shows, on the page and in the CSV export.
func TestFiltersFollowTheZone(t *testing.T) {
	srv := testenv.NewServer(t)
	a := rqNewAccount(t, srv, "ada@example.com")
	d := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3)
	// Day d at 20:00 UTC is already the next day in Tokyo; d+1 at 18:00
	// UTC is the day after that there.
	late := rqLog(t, srv, models.Request{AccountID: &a.id, KeyID: &a.key.ID, Status: 200, Model: "tt-chat-small",
		BillingOutcome: models.OutcomeCharged}, d.Add(20*time.Hour))
	evening := rqLog(t, srv, models.Request{AccountID: &a.id, KeyID: &a.key.ID, Status: 200, Model: "tt-chat-small",
		BillingOutcome: models.OutcomeCharged}, d.Add(42*time.Hour))
	day := d.AddDate(0, 0, 1).Format("2006-01-02")
	q := "?from=" + day + "&to=" + day

	shown := func() (page, csv string) {
		_, page = a.b.get("/requests" + q)
		_, csv = a.b.get("/requests.csv" + q)
		return page, csv
	}
	page, csv := shown()
	if !strings.Contains(page, evening.ID) || strings.Contains(page, late.ID) || !strings.Contains(csv, evening.ID) || strings.Contains(csv, late.ID) {
		t.Errorf("in UTC, %s should show only the call at 18:00 UTC that day", day)
	}
	if lbl := testenv.Doc(t, page).Find(`label[for=f-from]`).Text(); lbl != "From (UTC)" {
		t.Errorf("from's label %q", lbl)
	}
	chooseZone(t, a.b, "/requests", "Asia/Tokyo")
	page, csv = shown()
	if strings.Contains(page, evening.ID) || !strings.Contains(page, late.ID) || strings.Contains(csv, evening.ID) || !strings.Contains(csv, late.ID) {
		t.Errorf("in Tokyo, %s should show only the call at 05:00 JST that day", day)
	}
	if lbl := testenv.Doc(t, page).Find(`label[for=f-from]`).Text(); lbl != "From (Asia/Tokyo)" {
		t.Errorf("from's label %q", lbl)
	}
	// A time with its own offset means that moment, whatever the zone.
	_, page = a.b.get("/requests?from=" + url.QueryEscape(d.Add(41*time.Hour).Format(time.RFC3339)))
	if !strings.Contains(page, evening.ID) || strings.Contains(page, late.ID) {
		t.Error("an RFC 3339 time was read in the chosen zone")
	}
}
