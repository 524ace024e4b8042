package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
	"ttconsole/views"
)

func (a *App) overview(c echo.Context) error {
	w, err := a.Store.WalletOf(c.Request().Context(), currentUser(c).AccountID)
	if err != nil {
		return err
	}
	d := views.OverviewData{
		Balance:   models.FormatUSD(w.BalanceMicros),
		Available: models.FormatUSD(w.Available()),
		Held:      models.FormatUSD(w.HeldMicros),
	}
	return a.render(c, http.StatusOK, views.Overview(a.page(c, "Overview", "overview"), d))
}

// comingSoon stands in for a console page that is not built yet.
func (a *App) comingSoon(title, nav, what string) echo.HandlerFunc {
	return func(c echo.Context) error {
		return a.render(c, http.StatusOK, views.ComingSoon(a.page(c, title, nav), what))
	}
}
