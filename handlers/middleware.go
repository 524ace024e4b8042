package handlers

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"ttconsole/models"
)

// HeaderRequestID names the header every response carries.
const HeaderRequestID = "X-TT-Request-ID"

const ctxRequestID = "request_id"

// requestID gives every request, on every path, a fresh req_<ULID> id. It
// runs before routing so 404s get one too. An id sent by the client is
// never reused: ids must be unique to look a call up later.
func (a *App) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := a.Store.NewRequestID()
		c.Set(ctxRequestID, id)
		c.Response().Header().Set(HeaderRequestID, id)
		return next(c)
	}
}

// RequestID returns the id of the current request.
func RequestID(c echo.Context) string {
	id, _ := c.Get(ctxRequestID).(string)
	return id
}

// logRequests writes one JSON line per request and records its metrics.
func (a *App) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			// Let the central handler write the response now, so the
			// line below logs the status the client really got.
			c.Error(err)
		}
		took := time.Since(start)
		status := c.Response().Status
		a.metrics.observe(c.Path(), c.Request().Method, status, took)
		// ERROR is for the product's own faults, which an operator alerts
		// on; a 5xx the product chose to answer (the model server failed,
		// a bound was reached) is a warning, as handleError logs it.
		level := slog.LevelInfo
		switch {
		case status >= 500 && deliberate(err):
			level = slog.LevelWarn
		case status >= 500:
			level = slog.LevelError
		}
		a.Log.LogAttrs(c.Request().Context(), level, "request",
			slog.String("request_id", RequestID(c)),
			slog.String("method", c.Request().Method),
			slog.String("path", loggedPath(c.Request().URL.Path)),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(took.Microseconds())/1000),
			slog.String("ip", c.RealIP()),
		)
		return nil
	}
}

// tokenPaths are the paths whose last segment is a secret token (an
// invitation's link, and the mail's reset and confirmation links): the
// log keeps only its first 8 characters, so whoever reads the log cannot
// use the link.
var tokenPaths = []string{"/invitations/", "/password/reset/", "/verify/"}

func loggedPath(p string) string {
	for _, prefix := range tokenPaths {
		if token, ok := strings.CutPrefix(p, prefix); ok && len(token) > 8 {
			return prefix + token[:8] + "…"
		}
	}
	return p
}

// recoverPanics turns a panic into a 500 that carries the request id.
func (a *App) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			r := recover()
			if r == nil || r == http.ErrAbortHandler {
				if r != nil {
					panic(r)
				}
				return
			}
			buf := make([]byte, 4<<10)
			buf = buf[:runtime.Stack(buf, false)]
			a.Log.Error("panic", "request_id", RequestID(c), "panic", fmt.Sprint(r), "stack", string(buf))
			err = fmt.Errorf("panic: %v", r)
		}()
		return next(c)
	}
}

// secureHeaders sets strict security headers on every response.
func (a *App) secureHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return middleware.SecureWithConfig(middleware.SecureConfig{
		ContentTypeNosniff: "nosniff",
		XFrameOptions:      "DENY",
		HSTSMaxAge:         31536000,
		ContentSecurityPolicy: "default-src 'self'; img-src 'self' data:; object-src 'none'; " +
			"base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
		ReferrerPolicy: "same-origin",
	})(next)
}

// clientIP is the socket peer, unless the peer is a trusted proxy: then
// the right-most address in X-Forwarded-For that is not a trusted proxy,
// or X-Real-IP. Headers from anyone else change nothing.
func (a *App) clientIP(r *http.Request) string {
	var ip string
	if len(r.Header.Values(echo.HeaderXForwardedFor)) > 0 {
		ip = a.ipFromXFF(r)
	} else {
		ip = a.ipFromRealIP(r)
	}
	if addr, err := netip.ParseAddr(ip); err == nil {
		return addr.Unmap().String()
	}
	return ip
}

// newIPExtractors builds, once, the extractors clientIP uses: they trust
// only the configured proxies (not Echo's default of every private range).
func newIPExtractors(trusted []netip.Prefix) (xff, realIP echo.IPExtractor) {
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		if _, n, err := net.ParseCIDR(p.String()); err == nil {
			opts = append(opts, echo.TrustIPRange(n))
		}
	}
	return echo.ExtractIPFromXFFHeader(opts...), echo.ExtractIPFromRealIPHeader(opts...)
}

// csrf protects every console form: a state-changing request needs the
// _csrf token of its page (double-submit cookie), and browsers that say a
// request comes from another site are refused outright.
func (a *App) csrf() echo.MiddlewareFunc { return middleware.CSRFWithConfig(a.csrfConfig()) }

func (a *App) csrfConfig() middleware.CSRFConfig {
	return middleware.CSRFConfig{
		TokenLookup:    "form:_csrf,header:X-CSRF-Token",
		CookieName:     "tt_csrf",
		CookiePath:     "/",
		CookieHTTPOnly: true,
		CookieSameSite: http.SameSiteLaxMode,
		CookieSecure:   a.Config.SecureCookies,
		ErrorHandler: func(err error, c echo.Context) error {
			return echo.NewHTTPError(http.StatusForbidden,
				"This form has expired or came from another site. Go back, reload the page and try again.").SetInternal(err)
		},
	}
}

func csrfToken(c echo.Context) string {
	t, _ := c.Get(middleware.DefaultCSRFConfig.ContextKey).(string)
	return t
}

func itoa(n int) string { return strconv.Itoa(n) }

// redactLog is a log handler that redacts key secrets (models.RedactSecrets)
// from every line: the message and each text or error attribute. Paths,
// messages and errors echo what callers sent, and a caller may send a
// secret anywhere, so it is done once here rather than at each call site.
type redactLog struct{ h slog.Handler }

// withRedaction wraps a logger, once, so that it never writes a secret.
func withRedaction(l *slog.Logger) *slog.Logger {
	if l == nil {
		return nil
	}
	if _, ok := l.Handler().(redactLog); ok {
		return l
	}
	return slog.New(redactLog{l.Handler()})
}

func (r redactLog) Enabled(ctx context.Context, l slog.Level) bool { return r.h.Enabled(ctx, l) }

func (r redactLog) Handle(ctx context.Context, rec slog.Record) error {
	dirty := strings.Contains(rec.Message, models.KeySecretPrefix)
	rec.Attrs(func(a slog.Attr) bool {
		_, changed := redactAttr(a)
		dirty = dirty || changed
		return !dirty
	})
	if !dirty {
		return r.h.Handle(ctx, rec)
	}
	out := slog.NewRecord(rec.Time, rec.Level, models.RedactSecrets(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		a, _ = redactAttr(a)
		out.AddAttrs(a)
		return true
	})
	return r.h.Handle(ctx, out)
}

func (r redactLog) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i], _ = redactAttr(a)
	}
	return redactLog{r.h.WithAttrs(out)}
}

func (r redactLog) WithGroup(name string) slog.Handler { return redactLog{r.h.WithGroup(name)} }

// redactAttr returns a with any secret in its text redacted, and whether
// that changed it. An error is logged as its text, as slog does anyway.
func redactAttr(a slog.Attr) (slog.Attr, bool) {
	v := a.Value.Resolve()
	var s string
	switch v.Kind() {
	case slog.KindString:
		s = v.String()
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			s = x.Error()
		case fmt.Stringer:
			s = x.String()
		default:
			return a, false
		}
	case slog.KindGroup:
		as := v.Group()
		out := make([]slog.Attr, len(as))
		changed := false
		for i, g := range as {
			var c bool
			out[i], c = redactAttr(g)
			changed = changed || c
		}
		if !changed {
			return a, false
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}, true
	default:
		return a, false
	}
	if !strings.Contains(s, models.KeySecretPrefix) {
		return a, false
	}
	return slog.String(a.Key, models.RedactSecrets(s)), true
}
