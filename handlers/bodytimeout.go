package handlers

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/labstack/echo/v4"
)

// bodyDeadline gives a request's whole body BodyTimeout to arrive, so a
// client that sends a byte now and then cannot keep a connection (and a
// handler) for ever. The deadline is lifted once the body has been read:
// the server then watches the idle connection for the client going away,
// and a read deadline there would cancel a long stream.
func (a *App) bodyDeadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			return next(c)
		}
		rc := http.NewResponseController(c.Response().Writer)
		if err := rc.SetReadDeadline(time.Now().Add(a.BodyTimeout)); err != nil {
			return next(c) // not a network connection
		}
		r.Body = &deadlineBody{ReadCloser: r.Body, lift: func() { rc.SetReadDeadline(time.Time{}) }}
		return next(c)
	}
}

// deadlineBody lifts its read deadline when it reaches its end.
type deadlineBody struct {
	io.ReadCloser
	lift   func()
	lifted bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && !b.lifted {
		b.lifted = true
		b.lift()
	}
	return n, err
}

// bodyTimedOut reports whether err is a body that did not arrive in time.
func bodyTimedOut(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
