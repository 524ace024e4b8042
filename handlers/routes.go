package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"ttconsole/static"
)

// NewServer builds the Echo server with every route of the product.
func (a *App) NewServer() (*echo.Echo, error) {
	if err := a.init(); err != nil {
		return nil, err
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = a.handleError
	e.IPExtractor = a.clientIP

	e.Pre(a.requestID)
	e.Use(a.logRequests, a.recoverPanics, a.secureHeaders)

	// Operations.
	e.GET("/healthz", a.healthz)
	e.GET("/readyz", a.readyz)
	e.GET("/metrics", a.metricsHandler())
	e.GET("/static/*", echo.WrapHandler(http.StripPrefix("/static/", staticFiles(static.FS))))

	// Gateway: unknown /v1 paths fall through to the central error handler,
	// which answers 404 in the platform's JSON shape.

	// Console. Middleware is per route rather than on a group, so unknown
	// paths (such as an API path missing its /v1) are not caught by CSRF.
	console := []echo.MiddlewareFunc{middleware.BodyLimit("256K"), a.csrf(), a.loadSession}
	member := append(console[:len(console):len(console)], a.requireUser)
	e.GET("/signup", a.signupPage, console...)
	e.POST("/signup", a.signup, console...)
	e.GET("/login", a.loginPage, console...)
	e.POST("/login", a.login, console...)
	e.POST("/logout", a.logout, console...)

	e.GET("/", a.overview, member...)
	e.GET("/account", a.accountPage, member...)
	e.POST("/account/password", a.changePassword, member...)
	e.GET("/requests", a.comingSoon("Requests", "requests", "Look up any call by its X-TT-Request-ID and see its billing outcome and error detail."), member...)
	e.GET("/keys", a.comingSoon("API keys", "keys", "Create keys with model scope, IP restrictions, monthly limits and rate limits."), member...)
	e.GET("/billing", a.comingSoon("Billing", "billing", "See your wallet and ledger, and recharge."), member...)

	a.metrics.setRoutes(e.Routes())
	return e, nil
}
