package handlers

import (
	"crypto/rand"
	"encoding/hex"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
)

// A device cookie marks a browser that has signed in to an account with
// its password (OWASP, "Slow down online guessing attacks with device
// cookies"). Logins from it are counted against that browser alone, so
// strangers who use up an email's attempts do not lock its owner out.
// The cookie is signed like the session's and names the user and a random
// device id; a new one is given at every successful sign-in. Gorilla's
// cookie store refuses a signed value older than 30 days, so it lives as
// long.
const (
	deviceCookie       = "tt_device"
	deviceCookieMaxAge = 30 * 24 * 60 * 60
)

// trustDevice gives the browser a fresh device cookie for userID.
func (a *App) trustDevice(c echo.Context, userID string) error {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return err
	}
	sess, _ := a.Cookies.New(c.Request(), deviceCookie)
	sess.Values = map[any]any{"u": userID, "d": hex.EncodeToString(id)}
	sess.Options = a.cookieOptions(c, deviceCookieMaxAge)
	return sess.Save(c.Request(), c.Response())
}

// trustedDevice returns the device id of the browser's cookie when the
// cookie is valid and names the user who has this email, and "" otherwise.
func (a *App) trustedDevice(c echo.Context, email string) (string, error) {
	if _, err := c.Cookie(deviceCookie); err != nil {
		return "", nil
	}
	sess, err := a.Cookies.Get(c.Request(), deviceCookie)
	if err != nil { // forged, altered or too old: a browser like any other
		return "", nil
	}
	userID, _ := sess.Values["u"].(string)
	device, _ := sess.Values["d"].(string)
	if userID == "" || device == "" {
		return "", nil
	}
	u, err := a.Store.UserByEmail(c.Request().Context(), email)
	switch {
	case models.ErrorCode(err) == models.ENOTFOUND:
		return "", nil
	case err != nil:
		return "", err
	case u.ID != userID:
		return "", nil
	}
	return device, nil
}
