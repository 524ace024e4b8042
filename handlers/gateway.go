package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
)

// MaxAPIBody is the largest request body the gateway reads.
const MaxAPIBody = 1 << 20

const ctxCall = "gateway_call"

// call is what the gateway learns about one request as it runs the checks;
// it becomes the request's row in the log.
type call struct {
	row    models.Request
	key    *models.APIKey
	body   []byte
	logged bool // the row was written by the billing steps themselves
	// keep: the call's key keeps bodies; resp is the answer to keep (nil:
	// the error body), chunks a stream's chunk count.
	keep   bool
	resp   []byte
	chunks int
}

func callOf(c echo.Context) *call {
	gc, _ := c.Get(ctxCall).(*call)
	return gc
}

// gateway wraps every /v1 route: it starts the request's row and, for a
// call that moved no money (a rejection, a free read), writes it before the
// client gets its answer. A call that no key identifies is not written:
// no account could ever see it (see unidentified).
func (a *App) gateway(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		gc := &call{row: models.Request{
			ID: RequestID(c), Method: r.Method, Path: truncate(models.RedactSecrets(r.URL.Path), 512), ClientIP: c.RealIP(),
			CreatedAt: time.Now().UTC(),
		}}
		c.Set(ctxCall, gc)
		err := next(c)
		if gc.logged {
			a.keepBodies(gc)
			return err
		}
		if err != nil {
			status, typ, msg := classify(err, c)
			gc.row.Status, gc.row.ErrorType, gc.row.ErrorMessage = status, string(typ), msg
			gc.row.ErrorBody = errorBody(typ, msg)
		} else {
			gc.row.Status = c.Response().Status
		}
		// So a customer finds even a 404 or 413 of theirs. A 401 comes from
		// authenticate, which has looked the key up already.
		if gc.row.AccountID == nil && gc.row.Status != http.StatusUnauthorized {
			a.identify(c, gc)
		}
		if gc.row.AccountID == nil {
			return a.unidentified(c, gc.row.Status, err)
		}
		gc.row.LatencyMS = time.Since(gc.row.CreatedAt).Milliseconds()
		gc.row.BillingOutcome = models.OutcomeNotChargedRejected
		gc.row.Model = models.RedactSecrets(gc.row.Model) // an unknown model is whatever was sent
		if logErr := a.Store.LogRequest(r.Context(), &gc.row); logErr != nil {
			a.Log.Error("log request", "request_id", gc.row.ID, "err", logErr.Error())
		}
		a.keepBodies(gc)
		return err
	}
}

// answerFree answers a call that moves no money only once its row is
// written, so a client never holds a request id the log does not know.
func (a *App) answerFree(c echo.Context, gc *call, status int, v any) error {
	gc.row.Status = status
	gc.row.LatencyMS = time.Since(gc.row.CreatedAt).Milliseconds()
	gc.row.BillingOutcome = models.OutcomeNotChargedFree
	if err := a.Store.LogRequest(c.Request().Context(), &gc.row); err != nil {
		a.Log.Error("log request", "request_id", gc.row.ID, "err", err.Error())
		gc.row = models.Request{} // nothing to log twice
		gc.logged = true
		return apiError(TypeServiceUnavailable, "The request could not be recorded; nothing was charged. Retry shortly.")
	}
	gc.logged = true
	gc.keptAnswer(v)
	return c.JSON(status, v)
}

func errorBody(typ ErrorType, msg string) string {
	b, _ := json.Marshal(apiErrorBody{Error: apiErrorDetail{Type: typ, Message: msg}})
	return string(b)
}

// bearer returns the key presented in the Authorization header.
func bearer(c echo.Context) (string, bool) {
	h := c.Request().Header.Get(echo.HeaderAuthorization)
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// identify attributes a request that failed before authentication to the
// account of a valid key, when one was presented.
func (a *App) identify(c echo.Context, gc *call) {
	secret, ok := bearer(c)
	if !ok || !strings.HasPrefix(secret, "sk-tt-") {
		return
	}
	if k, err := a.Store.APIKeyBySecret(c.Request().Context(), secret); err == nil {
		gc.row.AccountID, gc.row.KeyID = &k.AccountID, &k.ID
	}
}

func unauthorized(msg string) error {
	return apiError(TypeUnauthorized, msg)
}

// readBody reads a POST body up to MaxAPIBody: the check that comes right
// after routing.
func (a *App) readBody(c echo.Context, gc *call) error {
	r := c.Request()
	if r.ContentLength > MaxAPIBody {
		return tooLarge()
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxAPIBody+1))
	if bodyTimedOut(err) {
		return invalid("The request body did not arrive within %s; send it whole, at once.", a.BodyTimeout)
	}
	if err != nil {
		return apiError(TypeInvalidRequest, "The request body could not be read.")
	}
	if len(b) > MaxAPIBody {
		return tooLarge()
	}
	gc.body = b
	return nil
}

func tooLarge() error {
	return apiError(TypeRequestTooLarge, fmt.Sprintf("The request body is larger than %d bytes (1 MiB).", MaxAPIBody))
}

// authenticate checks the key: missing, malformed, unknown, disabled,
// revoked or expired is 401, each with its own message.
func (a *App) authenticate(c echo.Context, gc *call) (err error) {
	secret, ok := bearer(c)
	if !ok {
		return unauthorized("Missing API key: send it as 'Authorization: Bearer sk-tt-…'.")
	}
	if !strings.HasPrefix(secret, "sk-tt-") || len(secret) > 100 {
		return unauthorized("Malformed API key: TT keys start with 'sk-tt-'. Check the Authorization header.")
	}
	k, err := a.Store.APIKeyBySecret(c.Request().Context(), secret)
	if models.ErrorCode(err) == models.ENOTFOUND {
		return unauthorized("Unknown API key: check that it was copied whole, or create a new key in the console.")
	}
	if err != nil {
		return err
	}
	gc.key = k
	gc.row.AccountID, gc.row.KeyID = &k.AccountID, &k.ID
	// Only the calls a usable key makes while it keeps bodies are kept.
	defer func() { gc.keep = gc.keep && err == nil }()
	gc.keep = k.KeepBodies && c.Request().Method == http.MethodPost
	now := a.now()
	switch {
	case k.Status == "revoked":
		return unauthorized(fmt.Sprintf("The API key %q (%s…%s) has been revoked; create a new key in the console.", k.Name, k.Prefix, k.Last4))
	case k.Status != "active":
		return unauthorized(fmt.Sprintf("The API key %q (%s…%s) is disabled; enable it on its page in the console.", k.Name, k.Prefix, k.Last4))
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		return unauthorized(fmt.Sprintf("The API key %q (%s…%s) expired at %s UTC.", k.Name, k.Prefix, k.Last4, k.ExpiresAt.UTC().Format("2006-01-02 15:04")))
	}
	// Last use is kept to the minute: most calls need no write for it.
	if k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) >= time.Minute {
		if err := a.Store.TouchAPIKey(c.Request().Context(), k.ID, now); err != nil {
			a.Log.Warn("touch key", "request_id", gc.row.ID, "err", err.Error())
		}
	}
	return nil
}

// checkIP refuses a source address outside the key's allow list.
func (a *App) checkIP(c echo.Context, gc *call) error {
	ip, err := netip.ParseAddr(gc.row.ClientIP)
	if err == nil && gc.key.AllowsIP(ip) {
		return nil
	}
	return apiError(TypeIPNotAllowed, fmt.Sprintf("Requests from %s are not allowed for the API key %q: add this address to the key's IP restriction in the console, or call from an allowed address.",
		gc.row.ClientIP, gc.key.Name))
}

// checkModel refuses a model outside the key's scope, naming what it allows.
func checkModel(gc *call, model string) error {
	if gc.key.AllowsModel(model) {
		return nil
	}
	return apiError(TypeModelNotAllowed, fmt.Sprintf("The model %q is not in the scope of the API key %q, which allows: %s. Adjust the key's scope in the console, or use an allowed model.",
		model, gc.key.Name, strings.Join(gc.key.ModelList(), ", ")))
}

func invalid(format string, args ...any) *APIError {
	return apiError(TypeInvalidRequest, fmt.Sprintf(format, args...))
}

// decodeJSON reads a JSON object into v, naming the field at fault. It
// refuses a body that an upstream could read differently (see strictJSON).
func decodeJSON(body []byte, v any) *APIError {
	if len(bytes.TrimSpace(body)) == 0 {
		return invalid("The request body is empty: send a JSON object.")
	}
	nameErr, strictErr := strictJSON(body, shapeOf(reflect.TypeOf(v)))
	if nameErr != nil {
		return nameErr
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			field := te.Field
			if field == "" {
				return invalid("The request body must be a JSON object.")
			}
			want := jsonType(te.Type.Kind().String())
			if want == "number" && strings.Contains(te.Type.Kind().String(), "int") {
				return invalid("The field %q must be a whole number, not %s.", field, te.Value)
			}
			return invalid("The field %q must be of type %s, not %s.", field, want, te.Value)
		case errors.As(err, &se):
			return invalid("The request body is not valid JSON (at byte %d): %s.", se.Offset, se.Error())
		}
		return invalid("The request body is not valid JSON: %s.", err.Error())
	}
	if dec.More() {
		return invalid("The request body has data after its JSON object.")
	}
	if strictErr != nil { // valid to encoding/json, but not to a strict reader (invalid UTF-8, say)
		return invalid("The request body is not valid JSON: %s.", strings.TrimPrefix(strictErr.Error(), "jsontext: "))
	}
	return nil
}

func jsonType(kind string) string {
	switch kind {
	case "int", "int64", "int32", "float64", "uint":
		return "number"
	case "map", "struct":
		return "object"
	case "slice":
		return "array"
	case "bool":
		return "boolean"
	}
	return kind
}

func notFound(echo.Context) error { return echo.ErrNotFound }
