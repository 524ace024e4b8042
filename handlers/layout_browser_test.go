package handlers_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// layoutCalls is a signed-in browser on an account that has made a call
// of every kind the Requests page must show, and paid once.
type layoutCalls struct {
	srv *testenv.Server
	ctx context.Context
	ids map[string]string // kind → request id
}

// newLayoutCalls seeds the account through the gateway, as a customer's
// program would, with the simulator's directives for the failures.
func newLayoutCalls(t *testing.T) *layoutCalls {
	t.Helper()
	srv := testenv.NewServer(t)
	// Two cents: enough for small calls, short of a long tt-chat-small answer's hold.
	acct := testenv.FundedKey(t, srv.Store, "ada@example.com", 20_000,
		models.KeyInput{Name: "production backend", Models: []string{"tt-chat-small"}, RPM: "600"})
	p := &platform{t: t, srv: srv, account: acct.ID, secret: acct.Secret, key: acct.Key}
	p.newKey(acct.ID, models.KeyInput{Name: "nightly batch", AllowedIPs: "203.0.113.7, 198.51.100.0/24, 2001:db8::/32",
		MonthlyLimitUSD: "12.50", RPM: "120"})

	ids := map[string]string{}
	want := func(kind string, r apiResult, status int, typ string) {
		t.Helper()
		if r.res.StatusCode != status {
			t.Fatalf("%s call: %d %s, want %d", kind, r.res.StatusCode, r.body, status)
		}
		if typ != "" {
			if got, _ := errorOf(t, r); got != typ {
				t.Fatalf("%s call: error %s, want %s", kind, got, typ)
			}
		}
		ids[kind] = r.id()
	}
	want("ok", p.chat(acct.Secret, 64, nil), http.StatusOK, "")
	want("shortfall", p.chat(acct.Secret, 16384, nil), http.StatusPaymentRequired, "billing_shortfall")
	want("scope", p.do("POST", "/v1/chat/completions", acct.Secret, chatBody("tt-chat-large", 64, nil)),
		http.StatusForbidden, "model_not_allowed")
	want("notfound", p.do("POST", "/v1/v1/chat/completions", acct.Secret, chatBody("tt-chat-small", 64, nil)),
		http.StatusNotFound, "not_found")
	want("upstream", p.chat(acct.Secret, 64, map[string]string{"sim_status": "502"}), http.StatusBadGateway, "upstream_error")
	res := p.openStream(context.Background(), streamBody(100, map[string]string{"sim_output_tokens": "40", "sim_cut_after": "5"}))
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	ids["cut"] = res.Header.Get("X-TT-Request-ID")
	if row := p.settled(ids["cut"]); row.BillingOutcome != models.OutcomeChargedPartial {
		t.Fatalf("cut stream settled %s, want %s", row.BillingOutcome, models.OutcomeChargedPartial)
	}

	// A team: a developer who joined, and an invitation still open.
	owner, err := srv.Store.UserByEmail(context.Background(), acct.Email)
	if err != nil {
		t.Fatal(err)
	}
	_, token, err := srv.Store.Invite(context.Background(), memberActor(t, srv, owner.ID), acct.ID, "grace.hopper.developer@example.com", "developer", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.Store.SignupByInvitation(context.Background(), models.Actor{}, token, testenv.Password, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.Store.Invite(context.Background(), memberActor(t, srv, owner.ID), acct.ID, "a.rather.long.address.for.a.phone@example.com", "billing", time.Now()); err != nil {
		t.Fatal(err)
	}

	ctx := testenv.Browser(t)
	err = chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/billing"),
		chromedp.WaitVisible(chromedp.CSS(`#f-email`)),
		chromedp.SendKeys(chromedp.CSS(`#f-email`), acct.Email),
		chromedp.SendKeys(chromedp.CSS(`#f-password`), testenv.Password),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=preset-25]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=preset-25]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=test-pay]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=test-pay]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=returned]`)),
	)
	if err != nil {
		t.Fatalf("sign in and recharge: %v", err)
	}
	return &layoutCalls{srv: srv, ctx: ctx, ids: ids}
}

// viewport makes the page width px wide; a phone is emulated as one, since
// headless Chromium's window is never narrower than 500 px.
func (l *layoutCalls) viewport(t *testing.T, width, height int64, phone bool) {
	t.Helper()
	opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(1)}
	if phone {
		opts = []chromedp.EmulateViewportOption{chromedp.EmulateScale(2), chromedp.EmulatePortrait, chromedp.EmulateMobile, chromedp.EmulateTouch}
	}
	if err := chromedp.Do(l.ctx, chromedp.EmulateViewport(width, height, opts...)); err != nil {
		t.Fatal(err)
	}
}

// open loads a console page and waits until its main content is there.
func (l *layoutCalls) open(t *testing.T, path string) {
	t.Helper()
	if err := chromedp.Do(l.ctx, chromedp.Navigate(l.srv.URL+path), chromedp.WaitReady(chromedp.CSS(`main`))); err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
}

// screenshot saves the whole page under $TT_SCREENSHOT_DIR when it is set,
// for a person to look at; the assertions never depend on it.
func (l *layoutCalls) screenshot(t *testing.T, name string) {
	t.Helper()
	dir := os.Getenv("TT_SCREENSHOT_DIR")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(l.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// noSidewaysScroll fails when the page is wider than the viewport.
func (l *layoutCalls) noSidewaysScroll(t *testing.T, path string) {
	t.Helper()
	type widths struct{ Scroll, Inner, Client float64 }
	m, err := chromedp.Run(l.ctx, chromedp.Evaluate[widths](`({scroll: document.documentElement.scrollWidth,
		inner: window.innerWidth, client: document.documentElement.clientWidth})`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Scroll > m.Inner || m.Scroll > m.Client {
		t.Errorf("%s scrolls sideways: %v px wide in a %v px viewport", path, m.Scroll, m.Client)
	}
}

// box is where an element is drawn, and whether a person can see it there.
type box struct {
	Found        bool
	Left, Right  float64
	Width        float64
	Height       float64
	Shown        bool // not display:none, visibility:hidden or covered
	Text         string
	Viewport     float64
	ElementAtMid string
}

func (b box) inView() bool {
	return b.Found && b.Shown && b.Width > 0 && b.Height > 0 && b.Left >= 0 && b.Right <= b.Viewport
}

func (b box) String() string {
	if !b.Found {
		return "missing"
	}
	return fmt.Sprintf("%q at x %.0f–%.0f (%.0f×%.0f, shown %v, topmost %s) in a %.0f px viewport",
		b.Text, b.Left, b.Right, b.Width, b.Height, b.Shown, b.ElementAtMid, b.Viewport)
}

// boxOf measures the first element matching sel as a person sees it after
// scrolling down to it.
func (l *layoutCalls) boxOf(t *testing.T, sel string) box {
	t.Helper()
	return l.measure(t, `document.querySelector(`+"`"+sel+"`"+`)`)
}

// cellOf measures, in the row matching rowSel, the cell under the column
// headed header (or the element matching inner inside it), wherever the
// page draws it: a table cell on a desk, a line of a card on a phone.
func (l *layoutCalls) cellOf(t *testing.T, rowSel, header, inner string) box {
	t.Helper()
	return l.measure(t, `(() => {
		const row = document.querySelector(`+"`"+rowSel+"`"+`);
		if (!row) return null;
		const heads = Array.from(row.closest("table").querySelectorAll("thead th")).map(th => th.textContent.trim());
		const cell = row.children[heads.indexOf(`+"`"+header+"`"+`)];
		if (!cell) return null;
		return `+"`"+inner+"`"+` ? cell.querySelector(`+"`"+inner+"`"+`) : cell;
	})()`)
}

func (l *layoutCalls) measure(t *testing.T, find string) box {
	t.Helper()
	js := `(() => {
		const e = ` + find + `;
		if (!e) return {found: false};
		// Only the page scrolls, and only down: a box that needs a sideways
		// scroll, of the page or of a scrolling table, is out of view.
		window.scrollTo(0, window.scrollY + e.getBoundingClientRect().top - window.innerHeight / 3);
		const r = e.getBoundingClientRect(), cs = getComputedStyle(e);
		const x = r.left + r.width / 2, y = r.top + r.height / 2;
		const top = x >= 0 && x < window.innerWidth && y >= 0 && y < window.innerHeight ? document.elementFromPoint(x, y) : null;
		const shown = cs.display !== "none" && cs.visibility !== "hidden" && top !== null && e.contains(top);
		return {found: true, left: r.left, right: r.right, width: r.width, height: r.height, shown: shown,
			text: e.textContent.trim().replace(/\s+/g, " "), viewport: document.documentElement.clientWidth,
			elementAtMid: top ? top.tagName + "." + top.className : "none"};
	})()`
	b, err := chromedp.Run(l.ctx, chromedp.Evaluate[box](js))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBrowserRequestsTableFitsDesktop checks that at the widths people
// use the console at, the Requests list shows every column that matters
// — Charge and Billing outcome included — without scrolling sideways.
func TestBrowserRequestsTableFitsDesktop(t *testing.T) {
	l := newLayoutCalls(t)
	for _, width := range []int64{1280, 1440, 1920} {
		l.viewport(t, width, 900, false)
		l.open(t, "/requests")
		l.screenshot(t, fmt.Sprintf("requests-%d", width))
		l.noSidewaysScroll(t, fmt.Sprintf("/requests at %d px", width))
		first := `table[data-testid=requests-table] tbody tr:first-child`
		for _, col := range []string{"Time", "Request id", "Status", "Error", "Model", "Key", "Charge", "Billing outcome"} {
			if b := l.cellOf(t, first, col, ""); !b.inView() {
				t.Errorf("at %d px the first row's %s is %s", width, col, b)
			}
		}
		for _, col := range []string{"Charge", "Billing outcome"} {
			if b := l.boxOf(t, `table[data-testid=requests-table] thead th:nth-last-child(`+map[string]string{"Charge": "2", "Billing outcome": "1"}[col]+`)`); !b.inView() || b.Text != col {
				t.Errorf("at %d px the %s header is %s", width, col, b)
			}
		}
	}
}

// TestBrowserConsoleFitsADesktop checks every console page at 1280 px:
// none scrolls sideways. (These and the phone's are the screenshots under
// docs/screenshots/, made with TT_SCREENSHOT_DIR set.)
func TestBrowserConsoleFitsADesktop(t *testing.T) {
	l := newLayoutCalls(t)
	l.viewport(t, 1280, 900, false)
	for _, pg := range []struct{ name, path string }{
		{"overview", "/"},
		{"requests", "/requests"},
		{"request-402", "/requests/" + l.ids["shortfall"]},
		{"request-404", "/requests/" + l.ids["notfound"]},
		{"keys", "/keys"},
		{"billing", "/billing"},
		{"team", "/team"},
		{"audit", "/audit"},
	} {
		l.open(t, pg.path)
		l.screenshot(t, "desktop-"+pg.name)
		l.noSidewaysScroll(t, pg.path+" at 1280 px")
	}
}

// TestBrowserConsoleFitsAPhone checks every console page at 390 px: none
// scrolls sideways, the Requests list still shows each call's status, id,
// error type, charge and outcome, and chart text can be read.
func TestBrowserConsoleFitsAPhone(t *testing.T) {
	l := newLayoutCalls(t)
	l.viewport(t, 390, 844, true)
	pages := []struct{ name, path string }{
		{"overview", "/"},
		{"requests", "/requests"},
		{"request-404", "/requests/" + l.ids["notfound"]},
		{"request-402", "/requests/" + l.ids["shortfall"]},
		{"keys", "/keys"},
		{"billing", "/billing"},
		{"team", "/team"},
		{"audit", "/audit"},
	}
	for _, pg := range pages {
		l.open(t, pg.path)
		l.screenshot(t, "phone-"+pg.name)
		l.noSidewaysScroll(t, pg.path+" at 390 px")
	}

	l.open(t, "/requests")
	for kind, id := range l.ids {
		row := `tr[data-request-id="` + id + `"]`
		shown := map[string]string{"Status": ".badge", "Request id": "a", "Charge": "", "Billing outcome": ".badge"}
		if kind != "ok" && kind != "cut" {
			shown["Error"] = "code"
		}
		for col, inner := range shown {
			if b := l.cellOf(t, row, col, inner); !b.inView() {
				t.Errorf("the %s call's %s on a phone is %s", kind, col, b)
			}
		}
		if b := l.cellOf(t, row, "Request id", "a"); !strings.Contains(b.Text, id[len(id)-4:]) {
			t.Errorf("the %s call's id shows %q, not the end of %s", kind, b.Text, id)
		}
	}
	if b := l.boxOf(t, `form.lookup button[type=submit]`); !b.inView() {
		t.Errorf("the Find button is %s", b)
	}

	// Chart text as drawn on the phone: 8 px is the least anyone reads.
	for _, path := range []string{"/", "/billing"} {
		l.open(t, path)
		l.chartTextReadable(t, path, `svg text`)
	}
	l.open(t, "/requests")
	if err := chromedp.Do(l.ctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid=status-chart] [data-loaded] svg`))); err != nil {
		t.Fatal(err)
	}
	l.chartTextReadable(t, "/requests", `[data-testid=status-chart] svg text`)
}

// chartTextReadable measures the height of every chart label on the page.
func (l *layoutCalls) chartTextReadable(t *testing.T, path, sel string) {
	t.Helper()
	js := `Array.from(document.querySelectorAll(` + "`" + sel + "`" + `)).map(e => ({text: e.textContent, height: e.getBoundingClientRect().height}))`
	type label struct {
		Text   string
		Height float64
	}
	labels, err := chromedp.Run(l.ctx, chromedp.Evaluate[[]label](js))
	if err != nil {
		t.Fatal(err)
	}
	if len(labels) == 0 {
		t.Fatalf("%s: no chart text found", path)
	}
	for _, lb := range labels {
		if lb.Height > 0 && lb.Height < 8 {
			t.Errorf("%s: chart label %q is %.1f px tall on a phone", path, lb.Text, lb.Height)
		}
	}
}
