package handlers_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"ttconsole/models"
)

// TestBrowserUsageAtADeskAndOnAPhone opens Usage grouped by model, key
// and day at 1280 px and at 390 px: the page never scrolls sideways, the
// chart is drawn inline with a hover title on every period, none of its
// labels is cut off, the totals show what the ledger charged, and every
// line's spend and link to its requests can be seen without scrolling
// sideways.
func TestBrowserUsageAtADeskAndOnAPhone(t *testing.T) {
	l := newLayoutCalls(t)
	u, err := l.srv.Store.UserByEmail(context.Background(), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	var charged int64
	for _, e := range ledgerCharges(t, l.srv.Store, u.AccountID) {
		charged -= e.AmountMicros
	}
	if charged == 0 {
		t.Fatal("the calls charged nothing")
	}
	hover := regexp.MustCompile(`^\w{3}, \w{3} \d+ \(UTC\): \$[\d.,]+ spent, \d+ requests$`)
	for _, vp := range []struct {
		name          string
		width, height int64
		phone         bool
	}{{"desk", 1280, 900, false}, {"phone", 390, 844, true}} {
		l.viewport(t, vp.width, vp.height, vp.phone)
		for _, group := range []string{"model", "key", "day"} {
			path := "/usage?group=" + group
			l.open(t, path)
			l.screenshot(t, "usage-"+group+"-"+vp.name)
			l.noSidewaysScroll(t, path+" on a "+vp.name)

			s := l.chartShape(t, `document.querySelector("[data-testid=usage-chart] svg")`)
			if !s.Inline || len(s.Titles) != 30 {
				t.Fatalf("%s %s: %d period titles, want one for each of the 30 days", vp.name, path, len(s.Titles))
			}
			for _, title := range s.Titles {
				if !hover.MatchString(title) {
					t.Fatalf("%s %s: a period's title reads %q", vp.name, path, title)
				}
			}
			if !strings.Contains(s.HoverTitle, " spent, ") || !strings.HasSuffix(s.Titles[29], "requests") {
				t.Errorf("%s %s: the tallest bar's hover title is %q", vp.name, path, s.HoverTitle)
			}
			if len(s.Clipped) > 0 {
				t.Errorf("%s %s: chart labels cut off: %v", vp.name, path, s.Clipped)
			}
			if len(s.Labels) < 3 {
				t.Errorf("%s %s: the chart's time axis shows %q", vp.name, path, s.Labels)
			}

			spend := l.boxOf(t, `[data-testid=usage-spend]`)
			if !spend.inView() || spend.Text != models.FormatUSD(charged) {
				t.Errorf("%s %s: total spend %s, want %s, what the ledger charged", vp.name, path, spend, models.FormatUSD(charged))
			}
			for _, col := range []string{"Requests", "Spend"} {
				if b := l.cellOf(t, `[data-testid=usage-table] tbody tr`, col, ""); !b.inView() || b.Text == "" {
					t.Errorf("%s %s: the first line's %s is %s", vp.name, path, col, b)
				}
			}
			if b := l.boxOf(t, `[data-testid=usage-table] tbody tr a`); !b.inView() || b.Text != "View requests" {
				t.Errorf("%s %s: the first line's link to its requests is %s", vp.name, path, b)
			}
		}
		l.chartTextReadable(t, "/usage", `[data-testid=usage-chart] svg text`)
	}

	// The link of a line opens the Requests list with the same filters.
	l.viewport(t, 1280, 900, false)
	l.open(t, "/usage?group=model")
	err = chromedp.Do(l.ctx,
		chromedp.Click(chromedp.CSS(`[data-testid=usage-table] tbody tr a`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=requests-table]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := chromedp.Run(l.ctx, chromedp.Evaluate[int](`document.querySelectorAll("[data-testid=requests-table] tbody tr").length`))
	if err != nil {
		t.Fatal(err)
	}
	if rows == 0 {
		t.Fatal("the Requests list a Usage line links to is empty")
	}
}
