package handlers_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"ttconsole/internal/testenv"
)

// consolePages are the signed-in pages of the layout fixture: the lists,
// a detail of each kind of call, a key and a payment.
func (l *layoutCalls) consolePages(t *testing.T) []string {
	t.Helper()
	pages := []string{"/", "/requests", "/keys", "/billing", "/team", "/account", "/audit"}
	for _, id := range l.ids {
		pages = append(pages, "/requests/"+id)
	}
	for list, sel := range map[string]string{"/keys": `a[href^="/keys/key_"]`, "/billing": `a[href^="/billing/payments/"]`} {
		l.open(t, list)
		href, err := chromedp.Run(l.ctx, chromedp.Evaluate[string](`document.querySelector('`+sel+`').getAttribute("href")`))
		if err != nil {
			t.Fatalf("no link %s on %s: %v", sel, list, err)
		}
		pages = append(pages, href)
	}
	return pages
}

// interactiveRoles are the roles of controls a person operates; each needs
// an accessible name.
var interactiveRoles = map[string]bool{"button": true, "textbox": true, "searchbox": true, "combobox": true, "listbox": true,
	"checkbox": true, "radio": true, "spinbutton": true, "slider": true, "switch": true, "link": true}

// TestBrowserAccessibility loads every console page with realistic data
// in Chromium and checks what a keyboard or screen-reader user meets:
// every control named, a skip link, a visible focus ring, and filter
// selects that do not submit the page when ↓ changes them.
func TestBrowserAccessibility(t *testing.T) {
	l := newLayoutCalls(t)
	l.viewport(t, 1280, 900, false)
	pages := l.consolePages(t)

	t.Run("every control has a name", func(t *testing.T) {
		for _, path := range pages {
			l.open(t, path)
			tree, err := chromedp.Call(l.ctx, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
			if err != nil {
				t.Fatal(err)
			}
			controls := 0
			for _, n := range tree.Nodes {
				if n.Ignored || n.Role == nil {
					continue
				}
				var role, name string
				json.Unmarshal(n.Role.Value, &role)
				if !interactiveRoles[role] {
					continue
				}
				controls++
				if n.Name != nil {
					json.Unmarshal(n.Name.Value, &name)
				}
				if strings.TrimSpace(name) == "" {
					html := "?"
					if n.BackendDOMNodeID != 0 {
						if r, err := chromedp.Call(l.ctx, dom.GetOuterHTML, dom.GetOuterHTMLParams{BackendNodeID: n.BackendDOMNodeID}); err == nil {
							html = r.OuterHTML
						}
					}
					t.Errorf("%s: a %s has no accessible name: %.200s", path, role, html)
				}
			}
			if controls == 0 {
				t.Errorf("%s: no controls found in the accessibility tree", path)
			}
		}
	})

	t.Run("skip link and visible focus", func(t *testing.T) {
		type focus struct {
			Tag, ID, Class, Text string
			OutlineStyle         string
			OutlineWidth         float64
			Top                  float64
		}
		active := func() focus {
			f, err := chromedp.Run(l.ctx, chromedp.Evaluate[focus](`(() => { const e = document.activeElement || document.body, cs = getComputedStyle(e);
				return {tag: e.tagName, id: e.id, class: e.className, text: (e.textContent || e.value || "").trim().slice(0, 40),
					outlineStyle: cs.outlineStyle, outlineWidth: parseFloat(cs.outlineWidth) || 0, top: e.getBoundingClientRect().top}; })()`))
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
		for _, path := range []string{"/", "/requests", "/billing"} {
			l.open(t, path)
			if err := chromedp.Do(l.ctx, chromedp.KeyEvent(kb.Tab)); err != nil {
				t.Fatal(err)
			}
			f := active()
			if f.Class != "skip-link" || f.Text != "Skip to main content" || f.Top < 0 {
				t.Errorf("%s: the first Tab reaches %+v, not a visible skip link", path, f)
			}
			// Every stop of the next few shows a ring of at least 2 px.
			for range 6 {
				if f.OutlineStyle == "none" || f.OutlineWidth < 2 {
					t.Errorf("%s: focus on <%s class=%q> %q shows no visible ring (outline %s %.1f px)", path, f.Tag, f.Class, f.Text, f.OutlineStyle, f.OutlineWidth)
				}
				if err := chromedp.Do(l.ctx, chromedp.KeyEvent(kb.Tab)); err != nil {
					t.Fatal(err)
				}
				f = active()
			}
			// The skip link takes the keyboard to the page's content.
			l.open(t, path)
			if err := chromedp.Do(l.ctx, chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Enter)); err != nil {
				t.Fatal(err)
			}
			if f := active(); f.ID != "main" {
				t.Errorf("%s: after the skip link, focus is on %+v, not the main content", path, f)
			}
		}
	})

	t.Run("down arrow in a filter select keeps the page", func(t *testing.T) {
		l.open(t, "/requests")
		ids, err := chromedp.Run(l.ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("form.filters select")).map(s => s.id)`))
		if err != nil || len(ids) == 0 {
			t.Fatalf("no filter selects: %v", err)
		}
		for _, id := range ids {
			l.open(t, "/requests")
			err := chromedp.Do(l.ctx,
				chromedp.Evaluate[chromedp.Void](`window.stillHere = true`),
				chromedp.Focus(chromedp.CSS("#"+id)),
				chromedp.KeyEvent(kb.ArrowDown),
				chromedp.Sleep(700*time.Millisecond),
			)
			if err != nil {
				t.Fatal(err)
			}
			type state struct {
				StillHere bool
				URL       string
				Value     string
				Focused   string
			}
			s, err := chromedp.Run(l.ctx, chromedp.Evaluate[state](`({stillHere: window.stillHere === true, url: location.href,
				value: document.getElementById("`+id+`").value, focused: document.activeElement.id})`))
			if err != nil {
				t.Fatal(err)
			}
			if !s.StillHere || s.URL != l.srv.URL+"/requests" {
				t.Errorf("↓ in #%s left the page for %s", id, s.URL)
			}
			if s.Value == "" {
				t.Errorf("↓ in #%s did not choose the next option: the key press was not made", id)
			}
			if s.Focused != id {
				t.Errorf("↓ in #%s moved the focus to %q", id, s.Focused)
			}
		}
	})

	t.Run("local time", func(t *testing.T) {
		if _, err := chromedp.Call(l.ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Tokyo"}); err != nil {
			t.Fatal(err)
		}
		l.open(t, "/requests")
		first := `table[data-testid=requests-table] tbody tr:first-child .c-time`
		utc, err := chromedp.Run(l.ctx, chromedp.Text(chromedp.CSS(first+" time")))
		if err != nil || !strings.HasSuffix(utc, " UTC") {
			t.Fatalf("before the switch the list's time reads %q (%v), want UTC", utc, err)
		}
		err = chromedp.Do(l.ctx,
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=tz-local]`)),
			chromedp.Click(chromedp.CSS(`[data-testid=tz-local]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=tz-local][aria-pressed=true]`)),
		)
		if err != nil {
			t.Fatalf("press Local: %v", err)
		}
		type cell struct{ Time, Title, Rel, URL string }
		c, err := chromedp.Run(l.ctx, chromedp.Evaluate[cell](`(() => { const t = document.querySelector("`+first+` time");
			return {time: t.textContent, title: t.title, rel: (t.nextElementSibling || {}).textContent || "", url: location.pathname}; })()`))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(c.Time, " JST") || c.URL != "/requests" {
			t.Errorf("after Local the list's time reads %q on %s, want Tokyo time on /requests", c.Time, c.URL)
		}
		if !strings.Contains(c.Title, "Asia/Tokyo") || !strings.Contains(c.Title, " UTC") {
			t.Errorf("the time's hover %q lacks its zone and the UTC moment", c.Title)
		}
		if !regexp.MustCompile(`ago|just now`).MatchString(c.Rel) {
			t.Errorf("no relative time beside the absolute one: %q", c.Rel)
		}
		// After the script has run, no hover on any page shows a bare clock.
		for _, path := range pages {
			l.open(t, path)
			titles, err := chromedp.Run(l.ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("[title]")).map(e => e.title)`))
			if err != nil {
				t.Fatal(err)
			}
			for _, title := range titles {
				if clockRe.MatchString(title) && !zonedRe.MatchString(title) {
					t.Errorf("%s: a hover shows a time without its zone: %q", path, title)
				}
			}
		}
	})
}

// TestNumberFieldsBringUpANumberPad: the amounts and counts people type
// ask phones for a number pad, and an IP address field does not.
func TestNumberFieldsBringUpANumberPad(t *testing.T) {
	srv := testenv.NewServer(t)
	a := rqNewAccount(t, srv, "ada@example.com")
	for path, fields := range map[string]map[string]string{
		"/keys":             {"monthly_limit_usd": "decimal", "rpm": "numeric"},
		"/keys/" + a.key.ID: {"monthly_limit_usd": "decimal", "rpm": "numeric"},
		"/billing":          {"amount_usd": "decimal", "low_balance_usd": "decimal"},
	} {
		_, page := a.b.get(path)
		doc := testenv.Doc(t, page)
		for name, want := range fields {
			if got, _ := doc.Find(`input[name=` + name + `]`).Attr("inputmode"); got != want {
				t.Errorf("%s: %s has inputmode %q, want %q", path, name, got, want)
			}
		}
	}
}
