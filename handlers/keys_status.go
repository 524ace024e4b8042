package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
)

// keyStatus disables, enables or revokes a key. A change its status does
// not allow (a second click, enabling a revoked key) is explained on the
// key's page rather than as an error page.
func (a *App) keyStatus(action string) echo.HandlerFunc {
	done := map[string]string{
		models.KeyActionDisable: "Key disabled: calls with it are refused until you enable it.",
		models.KeyActionEnable:  "Key enabled.",
		models.KeyActionRevoke:  "Key revoked. It can never be used again.",
	}[action]
	return func(c echo.Context) error {
		u := currentUser(c)
		_, err := a.Store.SetAPIKeyStatus(c.Request().Context(), u.AccountID, c.Param("id"), actor(c), action)
		switch {
		case models.ErrorCode(err) == models.ECONFLICT:
			a.flash(c, err.Error())
		case err != nil:
			return err
		default:
			a.flash(c, done)
		}
		return c.Redirect(http.StatusSeeOther, "/keys/"+c.Param("id"))
	}
}
