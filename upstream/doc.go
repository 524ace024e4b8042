// Package upstream is what the gateway forwards accepted calls to: any
// OpenAI-compatible server over HTTP, or the built-in simulator, which
// answers in-process (or as its own server with `ttconsole upstream-sim`)
// with deterministic text, real token counts, SSE streams and failures
// injected through the request's metadata.
package upstream
