// Package static holds the console's CSS, JavaScript and images, embedded
// into the binary so the console needs no CDN.
package static

import "embed"

// FS holds the static files.
//
//go:embed *.css *.js *.svg
var FS embed.FS
