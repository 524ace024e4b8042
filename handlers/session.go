package handlers

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"unicode"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"

	"ttconsole/models"
)

const (
	sessionCookie = "tt_session"
	flashCookie   = "tt_flash"
	ctxUser       = "user"
	ctxToken      = "session_token"
)

func (a *App) cookieOptions(c echo.Context, maxAge int) *sessions.Options {
	return &sessions.Options{
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
		Secure:   a.Config.SecureCookies || c.IsTLS(),
	}
}

// loadSession finds the signed-in user from the session cookie, which
// holds only a session token; the session itself lives in the database,
// with the account it works in. The user's role there is read on every
// request, so a changed role counts at once.
func (a *App) loadSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		sess, _ := a.Cookies.Get(c.Request(), sessionCookie) // a bad cookie is a new session
		token, _ := sess.Values["t"].(string)
		if token == "" {
			return next(c)
		}
		ctx := c.Request().Context()
		u, s, err := a.Store.SessionUser(ctx, token)
		switch {
		case models.ErrorCode(err) == models.ENOTFOUND:
			return next(c)
		case err != nil:
			return err
		}
		c.Set(ctxUser, u)
		c.Set(ctxToken, token)
		if s.AccountID != "" {
			m, err := a.Store.RoleIn(ctx, s.AccountID, u.ID)
			switch {
			case err == nil:
				c.Set(ctxMember, m)
			case models.ErrorCode(err) != models.ENOTFOUND: // not a member there any more: no account
				return err
			}
		}
		return next(c)
	}
}

// requireUser sends signed-out visitors to the login page.
func (a *App) requireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if currentUser(c) == nil {
			target := "/login"
			if c.Request().Method == http.MethodGet && c.Request().URL.Path != "/" {
				target += "?next=" + url.QueryEscape(c.Request().URL.RequestURI())
			}
			return c.Redirect(http.StatusSeeOther, target)
		}
		return next(c)
	}
}

func currentUser(c echo.Context) *models.User {
	u, _ := c.Get(ctxUser).(*models.User)
	return u
}

// startSession signs the user in with a fresh session id, working in
// accountID, ending the session the browser had before, so an id planted
// before login is useless.
func (a *App) startSession(c echo.Context, userID, accountID string) error {
	ctx := c.Request().Context()
	if old, _ := c.Get(ctxToken).(string); old != "" {
		if err := a.Store.DeleteSession(ctx, old); err != nil {
			return err
		}
	}
	token, err := a.Store.CreateSession(ctx, userID, accountID, c.RealIP(), c.Request().UserAgent())
	if err != nil {
		return err
	}
	sess, _ := a.Cookies.New(c.Request(), sessionCookie)
	sess.Values = map[any]any{"t": token}
	sess.Options = a.cookieOptions(c, int(models.SessionAbsoluteTimeout.Seconds()))
	c.Set(ctxToken, token)
	return sess.Save(c.Request(), c.Response())
}

// endSession deletes the current session and its cookie.
func (a *App) endSession(c echo.Context) error {
	if token, _ := c.Get(ctxToken).(string); token != "" {
		if err := a.Store.DeleteSession(c.Request().Context(), token); err != nil {
			return err
		}
	}
	sess, _ := a.Cookies.New(c.Request(), sessionCookie)
	sess.Options = a.cookieOptions(c, -1)
	return sess.Save(c.Request(), c.Response())
}

// flash queues a message for the next page the browser shows.
func (a *App) flash(c echo.Context, msg string) {
	sess, _ := a.Cookies.Get(c.Request(), flashCookie)
	sess.Options = a.cookieOptions(c, 300)
	sess.AddFlash(msg)
	_ = sess.Save(c.Request(), c.Response())
}

func (a *App) popFlashes(c echo.Context) []string {
	if _, err := c.Cookie(flashCookie); errors.Is(err, http.ErrNoCookie) {
		return nil
	}
	sess, _ := a.Cookies.Get(c.Request(), flashCookie)
	fl := sess.Flashes()
	if len(fl) == 0 {
		return nil
	}
	sess.Options = a.cookieOptions(c, -1)
	_ = sess.Save(c.Request(), c.Response())
	out := make([]string, 0, len(fl))
	for _, f := range fl {
		if s, ok := f.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// maxNextLen bounds next: the console's own links are far shorter.
const maxNextLen = 2048

// safeNext returns next when it is a path on this site, and "/" for
// anything else. Browsers forgive a lot in a Location header: they drop
// tabs and newlines, read \ as /, and take //host as another site. So next
// may hold only printable ASCII without \, must parse as a path with no
// scheme or host, and its path, however often something decodes it, must
// hold no //, \, control or space character.
func safeNext(next string) string {
	const home = "/"
	if next == "" || len(next) > maxNextLen || next[0] != '/' {
		return home
	}
	for i := 0; i < len(next); i++ {
		if ch := next[i]; ch <= ' ' || ch >= 0x7f || ch == '\\' {
			return home
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return home
	}
	path, _, _ := strings.Cut(next, "?")
	path, _, _ = strings.Cut(path, "#")
	for range 5 {
		if strings.Contains(path, "//") || strings.ContainsFunc(path, func(r rune) bool {
			return r == '\\' || unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
		}) {
			return home
		}
		decoded, err := url.PathUnescape(path)
		if err != nil {
			return home
		}
		if decoded == path {
			return next
		}
		path = decoded
	}
	return home // encoded five times over: no link of ours
}
