package handlers_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// chartShape is what a person sees of a chart: its hover titles, whether
// a bar under the pointer carries one, where the legend is against the
// bars, and whether any axis label runs past the chart's box.
type chartShape struct {
	Inline       bool
	Titles       []string
	HoverTitle   string
	LegendOnBars bool
	Clipped      []string
	Labels       []string // the axis labels drawn
}

// chartShapeJS measures the chart root found by the expression root.
const chartShapeJS = `((root) => {
	if (!root) return {inline: false};
	const out = {inline: root instanceof SVGSVGElement, titles: [], hoverTitle: "", legendOnBars: false, clipped: [], labels: []};
	root.scrollIntoView({block: "center"});
	out.titles = Array.from(root.querySelectorAll("g > title")).map(t => t.textContent);
	const segs = Array.from(root.querySelectorAll("g rect:not(.hit)")).filter(r => r.closest("g").querySelector("title"));
	const tallest = segs.sort((a, b) => b.getBoundingClientRect().height - a.getBoundingClientRect().height)[0];
	if (tallest) {
		const r = tallest.getBoundingClientRect();
		const under = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
		const g = under && under.closest("g");
		const title = g && g.querySelector(":scope > title");
		out.hoverTitle = title ? title.textContent : "";
	}
	const legend = root.querySelector(".chart-legend");
	if (legend) {
		const l = legend.getBoundingClientRect();
		out.legendOnBars = segs.some(s => { const r = s.getBoundingClientRect();
			return r.left < l.right && l.left < r.right && r.top < l.bottom && l.top < r.bottom; });
	}
	// A label is clipped when it runs out of the chart, or out of the
	// card, which hides what overflows it, or out of the viewport.
	const box = root.getBoundingClientRect(), card = root.closest(".card").getBoundingClientRect();
	for (const t of root.querySelectorAll("text")) {
		const r = t.getBoundingClientRect();
		if (r.width === 0) continue;
		if (r.left < Math.max(box.left, card.left) - 0.5 || r.right > Math.min(box.right, card.right, document.documentElement.clientWidth) + 0.5)
			out.clipped.push(t.textContent + " at " + Math.round(r.left) + "–" + Math.round(r.right) + " in " + Math.round(box.left) + "–" + Math.round(box.right));
	}
	out.labels = Array.from(root.querySelectorAll("g > text.tick")).filter(t => t.getBoundingClientRect().width > 0).map(t => t.textContent);
	return out;
})(ROOT)`

func (l *layoutCalls) chartShape(t *testing.T, root string) chartShape {
	t.Helper()
	s, err := chromedp.Run(l.ctx, chromedp.Evaluate[chartShape](strings.Replace(chartShapeJS, "ROOT", root, 1)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBrowserChartsShowTheirValues checks the Requests and Overview charts
// at a desk and on a phone: each bar under the pointer has a hover title
// with its period, zone and counts (the Requests chart was an image, whose
// titles never show), the legend never covers a bar, and no axis label is
// cut off at the chart's edge.
func TestBrowserChartsShowTheirValues(t *testing.T) {
	l := newLayoutCalls(t)
	period := regexp.MustCompile(`UTC\)?: \d+ requests?: \d+ 2xx`)
	for _, vp := range []struct {
		name          string
		width, height int64
		phone         bool
	}{{"desk", 1280, 900, false}, {"phone", 390, 844, true}} {
		l.viewport(t, vp.width, vp.height, vp.phone)

		l.open(t, "/requests")
		if err := chromedp.Do(l.ctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid=status-chart] [data-loaded] svg`))); err != nil {
			t.Fatalf("%s: the status chart is not drawn inline: %v", vp.name, err)
		}
		l.screenshot(t, "chart-requests-"+vp.name)
		s := l.chartShape(t, `document.querySelector("[data-testid=status-chart] svg")`)
		if !s.Inline {
			t.Fatalf("%s: the status chart is not an inline SVG", vp.name)
		}
		if !period.MatchString(s.HoverTitle) {
			t.Errorf("%s: the tallest bar's hover title is %q, want its period in UTC and its counts", vp.name, s.HoverTitle)
		}
		if !strings.Contains(s.HoverTitle, "6 requests") {
			t.Errorf("%s: the bar holding every call says %q, want 6 requests", vp.name, s.HoverTitle)
		}
		if len(s.Titles) < 24 {
			t.Errorf("%s: %d bars for the last 24 hours, want one an hour", vp.name, len(s.Titles))
		}
		if s.LegendOnBars {
			t.Errorf("%s: the status chart's legend is drawn over the bars", vp.name)
		}
		if len(s.Clipped) > 0 {
			t.Errorf("%s: status chart labels cut off: %v", vp.name, s.Clipped)
		}
		if len(s.Labels) < 3 {
			t.Errorf("%s: the status chart's time axis shows %q", vp.name, s.Labels)
		}

		l.open(t, "/")
		l.screenshot(t, "chart-overview-"+vp.name)
		for i, label := range []string{"requests", "spend"} {
			s := l.chartShape(t, `document.querySelectorAll("[data-testid=overview-chart] svg")[`+string(rune('0'+i))+`]`)
			if !s.Inline || len(s.Titles) != 30 {
				t.Fatalf("%s: the overview's %s chart has %d bar titles, want 30", vp.name, label, len(s.Titles))
			}
			if !strings.Contains(s.HoverTitle, "(UTC)") {
				t.Errorf("%s: the overview's %s hover title %q does not say its zone", vp.name, label, s.HoverTitle)
			}
			if len(s.Clipped) > 0 {
				t.Errorf("%s: the overview's %s chart cuts off %v", vp.name, label, s.Clipped)
			}
			if len(s.Labels) < 3 || s.Labels[len(s.Labels)-1] != s.Titles[29][5:5+len(s.Labels[len(s.Labels)-1])] {
				t.Errorf("%s: the overview's %s chart's axis shows %q, without today last", vp.name, label, s.Labels)
			}
		}
	}
}
