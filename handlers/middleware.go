package handlers

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
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
		id := models.NewRequestID()
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
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		a.Log.LogAttrs(c.Request().Context(), level, "request",
			slog.String("request_id", RequestID(c)),
			slog.String("method", c.Request().Method),
			slog.String("path", c.Request().URL.Path),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(took.Microseconds())/1000),
			slog.String("ip", c.RealIP()),
		)
		return nil
	}
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
func (a *App) csrf() echo.MiddlewareFunc {
	return middleware.CSRFWithConfig(middleware.CSRFConfig{
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
	})
}

func csrfToken(c echo.Context) string {
	t, _ := c.Get(middleware.DefaultCSRFConfig.ContextKey).(string)
	return t
}

func itoa(n int) string { return strconv.Itoa(n) }
