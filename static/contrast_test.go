package static

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestTextContrastAA checks every text colour of the stylesheet against
// WCAG 2's AA level for normal text (4.5:1): a rule's colour against the
// background the same rule sets, and a colour without one against every
// surface text lies on — the page, a card, a table head, a code span.
// SVG text (chart ticks and axes) is checked through its fill.
func TestTextContrastAA(t *testing.T) {
	css, err := FS.ReadFile("app.css")
	if err != nil {
		t.Fatal(err)
	}
	rules := cssRules(string(css))
	vars := map[string]string{}
	for _, r := range rules {
		if r.selector == ":root" {
			for k, v := range r.decls {
				if strings.HasPrefix(k, "--") {
					vars[k] = v
				}
			}
		}
	}
	resolve := func(v string) string {
		if m := regexp.MustCompile(`var\((--[\w-]+)\)`).FindStringSubmatch(v); m != nil {
			v = vars[m[1]]
		}
		if m := regexp.MustCompile(`#[0-9a-fA-F]{3,6}\b`).FindString(v); m != "" {
			return m
		}
		if strings.TrimSpace(v) == "#fff" || strings.Contains(v, "white") {
			return "#ffffff"
		}
		return ""
	}
	surfaces := []string{vars["--bg"], vars["--card"], "#f0f2f5", "#eef0f3"}
	checked := 0
	for _, r := range rules {
		fg := resolve(r.decls["color"])
		if fg == "" && (strings.Contains(r.selector, "tick") || strings.Contains(r.selector, "axis")) && !strings.Contains(r.selector, "line") {
			fg = resolve(r.decls["fill"])
		}
		if fg == "" || r.selector == ":root" {
			continue
		}
		bgs := surfaces
		if bg := resolve(r.decls["background"] + r.decls["background-color"]); bg != "" {
			bgs = []string{bg}
		}
		for _, bg := range bgs {
			checked++
			if c := contrast(fg, bg); c < 4.5 {
				t.Errorf("%s: text %s on %s has a contrast of %.2f:1, below AA's 4.5:1", r.selector, fg, bg, c)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d colour pairs found: the stylesheet was not read", checked)
	}
	// The check itself: a light grey on white fails, the body text passes.
	if contrast("#999999", "#ffffff") >= 4.5 || contrast(vars["--fg"], vars["--bg"]) < 4.5 {
		t.Fatal("contrast is computed wrongly")
	}
}

type cssRule struct {
	selector string
	decls    map[string]string
}

// cssRules reads the plain rules of a stylesheet, inside @media blocks too.
func cssRules(css string) []cssRule {
	css = regexp.MustCompile(`(?s)/\*.*?\*/`).ReplaceAllString(css, "")
	var out []cssRule
	for {
		open := strings.IndexByte(css, '{')
		if open < 0 {
			return out
		}
		head := strings.TrimSpace(css[:open])
		head = strings.TrimSpace(head[strings.LastIndexByte(head, '}')+1:])
		if strings.HasPrefix(head, "@") {
			css = css[open+1:]
			continue
		}
		end := strings.IndexByte(css[open:], '}')
		body := css[open+1 : open+end]
		css = css[open+end+1:]
		r := cssRule{selector: head, decls: map[string]string{}}
		for _, d := range strings.Split(body, ";") {
			if k, v, ok := strings.Cut(d, ":"); ok {
				r.decls[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
		out = append(out, r)
	}
}

func contrast(a, b string) float64 {
	la, lb := luminance(a), luminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

func luminance(hex string) float64 {
	h := strings.TrimPrefix(hex, "#")
	if len(h) == 3 {
		h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
	}
	var c [3]float64
	for i := range c {
		n, _ := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		v := float64(n) / 255
		if v <= 0.03928 {
			c[i] = v / 12.92
		} else {
			c[i] = math.Pow((v+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*c[0] + 0.7152*c[1] + 0.0722*c[2]
}
