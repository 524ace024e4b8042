package mailer

import (
	"html"
	"regexp"
	"strings"
)

// linkPattern finds the web addresses in a mail's text.
var linkPattern = regexp.MustCompile(`https?://[^\s<>"]+`)

// HTML is the HTML part of a mail whose plain text is text: the same
// words, escaped, in paragraphs (a blank line apart) with their line
// breaks, web addresses as links, in a simple one-column layout. Styles
// are inline: mail programs drop style sheets.
func HTML(subject, text string) string {
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">` +
		`<meta name="viewport" content="width=device-width, initial-scale=1"><title>`)
	b.WriteString(html.EscapeString(subject))
	b.WriteString(`</title></head>` +
		`<body style="margin:0;padding:24px 12px;background:#f4f5f7;color:#1d2330;` +
		`font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;font-size:15px;line-height:1.5">` +
		`<div style="max-width:560px;margin:0 auto;background:#ffffff;border:1px solid #dde1e7;border-radius:8px;padding:24px">` +
		`<p style="margin:0 0 16px;font-weight:600;font-size:16px">TT Console</p>`)
	for _, para := range strings.Split(strings.ReplaceAll(strings.TrimSpace(text), "\r\n", "\n"), "\n\n") {
		para = strings.Trim(para, "\n")
		if para == "" {
			continue
		}
		b.WriteString(`<p style="margin:0 0 16px">`)
		for i, line := range strings.Split(para, "\n") {
			if i > 0 {
				b.WriteString("<br>")
			}
			writeLinked(&b, line)
		}
		b.WriteString("</p>")
	}
	b.WriteString(`</div></body></html>`)
	return b.String()
}

// writeLinked writes a line escaped, with its web addresses as links. A
// full stop or bracket that ends a sentence is not part of the address.
func writeLinked(b *strings.Builder, line string) {
	last := 0
	for _, m := range linkPattern.FindAllStringIndex(line, -1) {
		start, end := m[0], m[1]
		end = start + len(strings.TrimRight(line[start:end], ".,;:!?)]'"))
		b.WriteString(html.EscapeString(line[last:start]))
		href := html.EscapeString(line[start:end])
		b.WriteString(`<a href="` + href + `" style="color:#1f5fd1;word-break:break-all">` + href + `</a>`)
		last = end
	}
	b.WriteString(html.EscapeString(line[last:]))
}
