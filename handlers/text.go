package handlers

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
)

// PostgreSQL stores no text with a NUL byte or bytes that are not UTF-8,
// and no page or id of the product has either: the console refuses them
// at the door, and what the gateway keeps of a call (its path, its model,
// an error's message) is made storable, so that every identified call is
// in the log whatever it sent.

// plain reports whether s is text every database stores.
func plain(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// storable returns s with each NUL byte and each run of bytes that are not
// UTF-8 replaced by U+FFFD.
func storable(s string) string {
	if plain(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// truncate returns s as storable text of at most n bytes, cut at a
// character boundary.
func truncate(s string, n int) string {
	s = storable(s)
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// plainInput refuses a console request that carries what no database
// stores as text: in the address's parameters (no page has such an
// address: 404), or in its query or form (400, naming the field). Nothing
// has changed when it does.
func plainInput(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		for _, v := range c.ParamValues() {
			if !plain(v) {
				return echo.ErrNotFound
			}
		}
		if err := plainValues("address", c.QueryParams()); err != nil {
			return err
		}
		if c.Request().Method == http.MethodPost {
			form, err := c.FormParams()
			if err != nil {
				return echo.NewHTTPError(http.StatusBadRequest, "The form could not be read; send it again.")
			}
			if err := plainValues("form", form); err != nil {
				return err
			}
		}
		return next(c)
	}
}

func plainValues(where string, vals url.Values) error {
	for name, vs := range vals {
		bad := !plain(name)
		for _, v := range vs {
			bad = bad || !plain(v)
		}
		if bad {
			return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf(
				"The %s's field %q holds a NUL byte or bytes that are not UTF-8, which no page accepts; nothing was changed.",
				where, storable(name)))
		}
	}
	return nil
}
