package handlers

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
	"ttconsole/views"
)

// createKey makes a key and answers with its secret, the one time it is
// ever shown. The secret goes into this response only: never into a
// redirect, a cookie, a flash or a log line.
func (a *App) createKey(c echo.Context) error {
	in, err := formKeyInput(c)
	if err != nil {
		return err
	}
	u := currentUser(c)
	k, secret, err := a.Store.CreateAPIKey(c.Request().Context(), u.AccountID, actor(c), in)
	var again *models.KeyAlreadyCreatedError
	if errors.As(err, &again) {
		a.flash(c, again.Error())
		return c.Redirect(http.StatusSeeOther, "/keys/"+again.KeyID)
	}
	if _, _, ok := fieldErrors(err); ok {
		f, ferr := a.refillKeyForm(c, "/keys", in, err)
		if ferr != nil {
			return ferr
		}
		f.Nonce = in.Nonce
		return a.renderKeys(c, statusOfFormError(err), f)
	}
	if err != nil {
		return err
	}
	return a.render(c, http.StatusCreated, views.KeyCreatedPage(a.page(c, "Key created", "keys"),
		views.KeyCreated{ID: k.ID, Name: k.Name, Display: k.Display(), Secret: secret}))
}
