package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"ttconsole/views"
)

// comingSoon stands in for a console page that is not built yet.
func (a *App) comingSoon(title, nav, what string) echo.HandlerFunc {
	return func(c echo.Context) error {
		return a.render(c, http.StatusOK, views.ComingSoon(a.page(c, title, nav), what))
	}
}
