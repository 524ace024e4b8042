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

	e.Pre(a.requestID, a.bodyDeadline)
	e.Use(a.logRequests, a.recoverPanics, a.secureHeaders)

	// Operations.
	e.GET("/healthz", a.healthz)
	e.GET("/readyz", a.readyz)
	e.GET("/metrics", a.metricsHandler())
	e.GET("/static/*", echo.WrapHandler(http.StripPrefix("/static/", staticFiles(static.FS))))

	// Gateway. Every /v1 request, unknown paths included, is logged; the
	// central error handler answers errors in the platform's JSON shape.
	api := []echo.MiddlewareFunc{a.gateway}
	e.POST("/v1/chat/completions", a.chatCompletions, api...)
	e.POST("/v1/embeddings", a.embeddings, api...)
	e.GET("/v1/models", a.listModels, api...)
	e.GET("/v1/requests/:id", a.getRequest, api...)
	e.GET("/v1/account", a.getAccount, api...)
	e.POST("/v1/tasks", a.createTask, api...)
	e.GET("/v1/tasks/:id", a.getTask, api...)
	e.POST("/v1/tasks/:id/cancel", a.cancelTask, api...)
	e.RouteNotFound("/v1", notFound, api...)
	e.RouteNotFound("/v1/*", notFound, api...)
	for _, p := range apiPaths { // a base URL missing its /v1
		e.RouteNotFound(p, notFound, api...)
		e.RouteNotFound(p+"/*", notFound, api...)
	}

	// Console. Middleware is per route rather than on a group, so unknown
	// paths (such as an API path missing its /v1) are not caught by CSRF.
	console := []echo.MiddlewareFunc{middleware.BodyLimit("256K"), a.csrf(), a.loadSession}
	member := append(console[:len(console):len(console)], a.requireUser)
	e.GET("/signup", a.signupPage, console...)
	e.POST("/signup", a.signup, console...)
	e.GET("/login", a.loginPage, console...)
	e.POST("/login", a.login, console...)
	e.POST("/logout", a.logout, console...)
	e.POST("/time-zone", a.setTimeZone, console...)
	e.GET("/password/forgot", a.forgotPage, console...)
	e.POST("/password/forgot", a.forgotPassword, console...)
	e.GET("/password/reset/:token", a.resetPage, console...)
	e.POST("/password/reset/:token", a.resetPassword, console...)
	e.GET("/verify/:token", a.verifyEmail, console...)
	e.POST("/verify/resend", a.resendVerification, member...)

	e.GET("/", a.overview, member...)
	e.GET("/account", a.accountPage, member...)
	e.POST("/account/password", a.changePassword, member...)
	e.GET("/requests", a.requestsPage, member...)
	e.GET("/requests.csv", a.requestsCSV, member...)
	e.GET("/requests/chart.svg", a.requestsChartSVG, member...)
	e.GET("/requests/count", a.requestsCount, member...)
	e.GET("/requests/:id", a.requestDetail, member...)
	e.GET("/usage", a.usagePage, member...)
	e.GET("/usage.csv", a.usageCSV, member...)
	e.POST("/requests/:id/fix/allow-ip", a.fixAllowIP, member...)
	e.POST("/requests/:id/fix/add-model", a.fixAddModel, member...)
	e.POST("/requests/:id/fix/raise-limit", a.fixRaiseLimit, member...)
	e.GET("/keys", a.keysPage, member...)
	e.POST("/keys", a.createKey, member...)
	e.GET("/keys/:id", a.keyPage, member...)
	e.POST("/keys/:id", a.updateKey, member...)
	e.POST("/keys/:id/disable", a.keyStatus("disable"), member...)
	e.POST("/keys/:id/enable", a.keyStatus("enable"), member...)
	e.POST("/keys/:id/revoke", a.keyStatus("revoke"), member...)
	e.POST("/keys/:id/bodies/delete", a.deleteKeptBodies, member...)
	e.GET("/billing", a.billingPage, member...)
	e.POST("/billing/recharge", a.recharge, member...)
	e.POST("/billing/low-balance", a.setLowBalance, member...)
	e.GET("/billing/payments/:id", a.paymentPage, member...)
	e.POST("/billing/payments/:id/recheck", a.recheckPayment, member...)
	e.GET("/billing/test-checkout/:session_id", a.testCheckoutPage, member...)
	e.POST("/billing/test-checkout/:session_id", a.testCheckoutAction, member...)
	e.POST("/billing/payment-method", a.savePaymentMethod, member...)
	e.POST("/billing/payment-method/remove", a.removePaymentMethod, member...)
	e.GET("/billing/test-setup/:session_id", a.testSetupPage, member...)
	e.POST("/billing/test-setup/:session_id", a.testSetupAction, member...)
	e.POST("/billing/auto-topup", a.saveAutoTopup, member...)
	e.POST("/billing/payments/:id/confirm", a.confirmPayment, member...)
	e.GET("/billing/payments/:id/receipt", a.receiptPage, member...)
	e.POST("/alerts/:id/dismiss", a.dismissAlert, member...)

	// Payment provider webhooks: no session and no CSRF; every event is
	// authenticated by its signature.
	e.POST("/webhooks/stripe", a.stripeWebhook)

	// Any other path: the console's 404 page, signed in when the visitor is.
	e.RouteNotFound("/*", notFound, a.pageNotFound()...)

	a.metrics.setRoutes(e.Routes())
	return e, nil
}
