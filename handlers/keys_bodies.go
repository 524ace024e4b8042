package handlers

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
)

// deleteKeptBodies deletes every request and response body a key keeps,
// once its owner has confirmed it on the key's page.
func (a *App) deleteKeptBodies(c echo.Context) error {
	u := currentUser(c)
	n, err := a.Store.DeleteKeptBodiesNow(c.Request().Context(), u.AccountID, c.Param("id"), actor(c))
	if err != nil {
		return err
	}
	switch n {
	case 0:
		a.flash(c, "There were no kept bodies to delete.")
	case 1:
		a.flash(c, "Deleted the kept bodies of 1 call.")
	default:
		a.flash(c, fmt.Sprintf("Deleted the kept bodies of %d calls.", n))
	}
	return c.Redirect(http.StatusSeeOther, "/keys/"+c.Param("id"))
}
