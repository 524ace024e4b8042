package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// pageNotFound is the middleware of an unknown path outside the gateway:
// the session is read, so a signed-in person's 404 page keeps their
// header and menu, and a page's form token is made (for the header's
// Log out). Nothing is checked: a POST to an unknown path, or a program
// that lost its /v1, still gets its 404, never a CSRF refusal.
func (a *App) pageNotFound() []echo.MiddlewareFunc {
	cfg := a.csrfConfig()
	cfg.Skipper = func(c echo.Context) bool {
		m := c.Request().Method
		return (m != http.MethodGet && m != http.MethodHead) || isAPIRequest(c)
	}
	return []echo.MiddlewareFunc{middleware.CSRFWithConfig(cfg), a.loadSession}
}
