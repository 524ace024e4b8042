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
	console := []echo.MiddlewareFunc{middleware.BodyLimit("256K"), plainInput, a.csrf(), a.loadSession}
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

	// An invitation's link works signed in or out: its token is the key.
	e.GET("/invitations/:token", a.invitationPage, console...)
	e.POST("/invitations/:token", a.acceptInvitation, console...)

	// Signed-in pages and actions, each with the permission it needs in
	// the session's active account (roles.go says which roles hold it).
	r := consoleRoutes{e: e, a: a, chain: member}
	r.GET("/", a.overview, permView)
	r.GET("/account", a.accountPage, permSelf)
	r.POST("/account/password", a.changePassword, permSelf)
	r.POST("/verify/resend", a.resendVerification, permSelf)
	r.POST("/switch", a.switchAccount, permSelf)
	r.GET("/requests", a.requestsPage, permView)
	r.GET("/requests.csv", a.requestsCSV, permView)
	r.GET("/requests/chart.svg", a.requestsChartSVG, permView)
	r.GET("/requests/count", a.requestsCount, permView)
	r.GET("/requests/:id", a.requestDetail, permView)
	r.GET("/usage", a.usagePage, permView)
	r.GET("/usage.csv", a.usageCSV, permView)
	r.POST("/requests/:id/fix/allow-ip", a.fixAllowIP, permFix)
	r.POST("/requests/:id/fix/add-model", a.fixAddModel, permFix)
	r.POST("/requests/:id/fix/raise-limit", a.fixRaiseLimit, permFix)
	r.GET("/keys", a.keysPage, permView)
	r.POST("/keys", a.createKey, permKeys)
	r.GET("/keys/:id", a.keyPage, permView)
	r.POST("/keys/:id", a.updateKey, permKeys)
	r.POST("/keys/:id/disable", a.keyStatus("disable"), permKeys)
	r.POST("/keys/:id/enable", a.keyStatus("enable"), permKeys)
	r.POST("/keys/:id/revoke", a.keyStatus("revoke"), permKeys)
	r.POST("/keys/:id/bodies/delete", a.deleteKeptBodies, permKeys)
	r.GET("/audit", a.auditPage, permAudit)
	r.GET("/audit.csv", a.auditCSV, permAudit)
	r.GET("/billing", a.billingPage, permView)
	r.POST("/billing/recharge", a.recharge, permBilling)
	r.POST("/billing/low-balance", a.setLowBalance, permBilling)
	r.GET("/billing/payments/:id", a.paymentPage, permView)
	r.POST("/billing/payments/:id/recheck", a.recheckPayment, permBilling)
	r.GET("/billing/test-checkout/:session_id", a.testCheckoutPage, permBilling)
	r.POST("/billing/test-checkout/:session_id", a.testCheckoutAction, permBilling)
	r.POST("/billing/payment-method", a.savePaymentMethod, permBilling)
	r.POST("/billing/payment-method/remove", a.removePaymentMethod, permBilling)
	r.GET("/billing/test-setup/:session_id", a.testSetupPage, permBilling)
	r.POST("/billing/test-setup/:session_id", a.testSetupAction, permBilling)
	r.POST("/billing/auto-topup", a.saveAutoTopup, permBilling)
	r.POST("/billing/payments/:id/confirm", a.confirmPayment, permBilling)
	r.GET("/billing/payments/:id/receipt", a.receiptPage, permView)
	r.POST("/alerts/:id/dismiss", a.dismissAlert, permView)
	r.GET("/team", a.teamPage, permView)
	r.POST("/team/invitations", a.invite, permMembers)
	r.POST("/team/invitations/:id/revoke", a.revokeInvitation, permMembers)
	r.POST("/team/members/:user_id", a.setMemberRole, permMembers)
	r.POST("/team/members/:user_id/remove", a.removeMember, permMembers)
	r.POST("/team/members/:user_id/transfer", a.transferOwnership, permTransfer)

	// Payment provider webhooks: no session and no CSRF; every event is
	// authenticated by its signature.
	e.POST("/webhooks/stripe", a.stripeWebhook)

	// Any other path: the console's 404 page, signed in when the visitor is.
	e.RouteNotFound("/*", notFound, a.pageNotFound()...)

	a.metrics.setRoutes(e.Routes())
	return e, nil
}
