package handlers

import (
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/labstack/echo/v4"

	"ttconsole/models"
	"ttconsole/views"
)

// ErrorType is the "type" of the JSON error body.
type ErrorType string

// The error types: the platform's catalogue (DESIGN §2), then two outside
// it: cancelled, recorded for a call whose client left before the answer,
// and invalid_signature, the Stripe webhook's.
const (
	TypeInvalidRequest     ErrorType = "invalid_request"
	TypeRequestTooLarge    ErrorType = "request_too_large"
	TypeUnauthorized       ErrorType = "unauthorized"
	TypeBillingShortfall   ErrorType = "billing_shortfall"
	TypeKeyQuotaExceeded   ErrorType = "api_key_quota_exceeded"
	TypeModelNotAllowed    ErrorType = "model_not_allowed"
	TypeIPNotAllowed       ErrorType = "ip_not_allowed"
	TypeNotFound           ErrorType = "not_found"
	TypeRateLimited        ErrorType = "rate_limited"
	TypeUpstreamError      ErrorType = "upstream_error"
	TypeServiceUnavailable ErrorType = "service_unavailable"
	TypeUpstreamTimeout    ErrorType = "upstream_timeout"
	TypeInternal           ErrorType = "internal_error"
	TypeCancelled          ErrorType = "cancelled"
	TypeInvalidSignature   ErrorType = "invalid_signature"
)

// errorKind is what the product knows of one error type.
type errorKind struct {
	Type   ErrorType
	Label  string // in words, for the Requests page's filter
	Status int
	// Message is said when nothing more precise is known.
	Message string
	// Contract: in the published catalogue, so the Requests page offers
	// it as a filter.
	Contract bool
	// Bare: the type of an error that carries nothing but this status.
	Bare bool
}

// errorCatalogue is every error type with its status and default message,
// in the order the Requests page offers them as filters.
var errorCatalogue = [...]errorKind{
	{Type: TypeInvalidRequest, Label: "Invalid request", Status: http.StatusBadRequest, Contract: true, Bare: true,
		Message: "The request is not valid."},
	{Type: TypeRequestTooLarge, Label: "Request too large", Status: http.StatusRequestEntityTooLarge, Contract: true, Bare: true,
		Message: "The request body is too large."},
	{Type: TypeUnauthorized, Label: "Unauthorized key", Status: http.StatusUnauthorized, Contract: true, Bare: true,
		Message: "The API key is missing or invalid."},
	{Type: TypeBillingShortfall, Label: "Balance too low", Status: http.StatusPaymentRequired, Contract: true,
		Message: "The wallet's available balance is less than this call's hold. Go to Billing in the console to recharge."},
	{Type: TypeKeyQuotaExceeded, Label: "Key's monthly limit reached", Status: http.StatusPaymentRequired, Contract: true,
		Message: "This call would take the API key past its monthly limit. Raise the key's monthly limit in the console, or use another key."},
	{Type: TypeModelNotAllowed, Label: "Model not allowed for the key", Status: http.StatusForbidden, Contract: true,
		Message: "The model is not in the scope of this API key."},
	{Type: TypeIPNotAllowed, Label: "Source IP not allowed for the key", Status: http.StatusForbidden, Contract: true,
		Message: "Requests from this address are not allowed for this API key."},
	{Type: TypeNotFound, Label: "Wrong path", Status: http.StatusNotFound, Contract: true, Bare: true,
		Message: "There is nothing at this address."},
	{Type: TypeRateLimited, Label: "Rate limited", Status: http.StatusTooManyRequests, Contract: true, Bare: true,
		Message: "Too many requests. Retry after the window resets."},
	{Type: TypeUpstreamError, Label: "Model server error", Status: http.StatusBadGateway, Contract: true, Bare: true,
		Message: "The model server failed. Not charged; retry with backoff."},
	{Type: TypeServiceUnavailable, Label: "Service unavailable", Status: http.StatusServiceUnavailable, Contract: true, Bare: true,
		Message: "The service is briefly unavailable; nothing was charged. Retry shortly with backoff."},
	{Type: TypeUpstreamTimeout, Label: "Model server timed out", Status: http.StatusGatewayTimeout, Contract: true, Bare: true,
		Message: "The model server did not answer in time. Not charged; retry with backoff."},
	{Type: TypeInternal, Label: "Internal error", Status: http.StatusInternalServerError, Contract: true, Bare: true,
		Message: "An internal error occurred. It has been logged; quote the request id if you contact support."},
	{Type: TypeCancelled, Status: 499, // nginx's "client closed request": no one reads it
		Message: "The client closed the connection before the answer."},
	{Type: TypeInvalidSignature, Status: http.StatusBadRequest,
		Message: "The Stripe-Signature header does not verify."},
}

func (t ErrorType) kind() errorKind {
	for _, k := range errorCatalogue {
		if k.Type == t {
			return k
		}
	}
	return errorKind{Type: t, Status: http.StatusInternalServerError}
}

// contractTypes are the published catalogue's types, in the Requests
// page's order.
func contractTypes() []views.Option {
	var out []views.Option
	for _, k := range errorCatalogue {
		if k.Contract {
			out = append(out, views.Option{Value: string(k.Type), Label: k.Label + " (" + string(k.Type) + ")"})
		}
	}
	return out
}

// APIError is an error in the platform's contract: an HTTP status and one
// of the catalogue's types, rendered as {"error":{"type":…,"message":…}}.
type APIError struct {
	Status  int
	Type    ErrorType
	Message string
}

// apiError is an error of type t with the catalogue's status; an empty
// msg is the type's default message.
func apiError(t ErrorType, msg string) *APIError {
	k := t.kind()
	if msg == "" {
		msg = k.Message
	}
	return &APIError{Status: k.Status, Type: t, Message: msg}
}

func (e *APIError) Error() string { return string(e.Type) + ": " + e.Message }

// apiErrorBody is the one JSON shape of every gateway error.
type apiErrorBody struct {
	Error apiErrorDetail `json:"error"`
}

type apiErrorDetail struct {
	Type    ErrorType `json:"type"`
	Message string    `json:"message"`
}

// statusOfCode maps the models' error codes to HTTP statuses.
var statusOfCode = map[string]int{
	models.EINVALID:      http.StatusBadRequest,
	models.ENOTFOUND:     http.StatusNotFound,
	models.ECONFLICT:     http.StatusConflict,
	models.EUNAUTHORIZED: http.StatusUnauthorized,
	models.EFORBIDDEN:    http.StatusForbidden,
	models.EUNAVAILABLE:  http.StatusServiceUnavailable,
}

// deliberate reports whether err is an answer the product chose: an
// *APIError (the model server failed or timed out, or a write failed and
// was logged where it did) or a bound that was reached (EUNAVAILABLE).
// As a 5xx it is not a fault of the product's own.
func deliberate(err error) bool {
	return models.ErrorCode(err) == models.EUNAVAILABLE || errors.As(err, new(*APIError))
}

// handleError is the one place errors become responses: the JSON error
// shape for the gateway, an HTML page with the request id for the console.
// A 5xx is logged with the request id: as an error when it is a fault of
// the product's own, as a warning when it was deliberate; nothing is
// written twice.
func (a *App) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		a.Log.Warn("error after response started", "request_id", RequestID(c), "err", err.Error())
		return
	}
	status, apiType, message := classify(err, c)
	switch {
	case models.ErrorCode(err) == models.EUNAVAILABLE:
		// Busy by design (a bound was reached): worth a warning, not an alarm.
		a.Log.Warn("busy", "request_id", RequestID(c), "path", c.Request().URL.Path, "err", err.Error())
	case status >= 500 && deliberate(err):
		// A deliberate answer (the model server failed or timed out, or
		// a write failed and was logged where it did): not a fault here.
		a.Log.Warn("answered with an error", "request_id", RequestID(c), "path", c.Request().URL.Path, "err", err.Error())
	case status >= 500:
		a.Log.Error("internal error", "request_id", RequestID(c), "path", c.Request().URL.Path, "err", err.Error())
	}
	if isAPIRequest(c) {
		var werr error
		if c.Request().Method == http.MethodHead {
			werr = c.NoContent(status)
		} else {
			werr = c.JSON(status, apiErrorBody{Error: apiErrorDetail{Type: apiType, Message: message}})
		}
		if werr != nil {
			a.Log.Warn("write error response", "request_id", RequestID(c), "err", werr.Error())
		}
		return
	}
	title := http.StatusText(status)
	switch status {
	case http.StatusNotFound:
		title, message = "Page not found", "There is nothing at this address in your console."
	case http.StatusInternalServerError:
		title = "Something went wrong"
	}
	p := a.page(c, title, "")
	if werr := a.render(c, status, views.ErrorPage(p, status, title, message)); werr != nil {
		a.Log.Warn("write error page", "request_id", RequestID(c), "err", werr.Error())
	}
}

// classify returns the status, the API error type and a message safe to
// show, log and store for err. Errors the product did not make are 500
// with a generic message: their text may hold internals. A message that
// echoes what the caller sent has any key secret in it redacted, and is
// storable text (the request log keeps it).
func classify(err error, c echo.Context) (int, ErrorType, string) {
	status, typ, msg := classifyRaw(err, c)
	return status, typ, storable(models.RedactSecrets(msg))
}

func classifyRaw(err error, c echo.Context) (int, ErrorType, string) {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Status, apiErr.Type, apiErr.Message
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		status := he.Code
		msg, _ := he.Message.(string)
		switch {
		case status == http.StatusNotFound:
			msg = notFoundMessage(c)
		case status == http.StatusMethodNotAllowed:
			msg = "The method " + c.Request().Method + " is not allowed on " + c.Request().URL.Path + "."
		case status == http.StatusRequestEntityTooLarge:
			msg = TypeRequestTooLarge.kind().Message
		case msg == "" || status >= 500:
			msg = http.StatusText(status)
		}
		return status, typeOfStatus(status), msg
	}
	var me *models.Error
	if errors.As(err, &me) {
		status, ok := statusOfCode[me.Code]
		if !ok {
			status = http.StatusInternalServerError
		}
		return status, typeOfStatus(status), me.Message
	}
	e := apiError(TypeInternal, "")
	if databaseUnavailable(err) {
		e = apiError(TypeServiceUnavailable, "")
	}
	return e.Status, e.Type, e.Message
}

// databaseUnavailable says whether err means the database could not be
// reached (a restart, a failover, a cut connection): a temporary state,
// so the client is told to retry rather than that something broke.
func databaseUnavailable(err error) bool {
	var connErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connErr) || errors.As(err, &netErr) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.ErrUnexpectedEOF) || pgconn.SafeToRetry(err) { // SafeToRetry: a closed connection, nothing sent
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; 57P01-57P03: the server is
		// shutting down or starting; 53300: too many connections.
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" ||
			pgErr.Code == "57P03" || pgErr.Code == "53300"
	}
	return false
}

// typeOfStatus names the type of an error that carries only its status.
func typeOfStatus(status int) ErrorType {
	for _, k := range errorCatalogue {
		if k.Bare && k.Status == status {
			return k.Type
		}
	}
	if status >= 500 {
		return TypeInternal
	}
	return TypeInvalidRequest
}

// apiPaths are the gateway's endpoints that no console page shares, used
// to recognise a base URL that lost its /v1. /requests and /account are
// not among them: without /v1 those are console pages.
var apiPaths = []string{"/chat/completions", "/embeddings", "/models", "/tasks"}

// consoleSections are the first segments of the console's pages. A path
// under one of them is the console's, whatever the request carries: its
// errors are the console's HTML page.
var consoleSections = []string{"/requests", "/account", "/keys", "/billing", "/login", "/signup", "/logout",
	"/team", "/invitations", "/switch"}

// isConsolePath says whether p is a console page or under one:
// /requests, /requests.csv and /requests/… all are.
func isConsolePath(p string) bool {
	for _, s := range consoleSections {
		if rest, ok := strings.CutPrefix(p, s); ok && (rest == "" || rest[0] == '/' || rest[0] == '.') {
			return true
		}
	}
	return false
}

// isAPIRequest says whether the client is a program talking to the
// gateway, which gets JSON errors, rather than a browser.
func isAPIRequest(c echo.Context) bool {
	p := c.Request().URL.Path
	if p == "/v1" || strings.HasPrefix(p, "/v1/") || strings.HasPrefix(p, "/webhooks/") {
		return true
	}
	if isConsolePath(p) {
		return false
	}
	if strings.HasPrefix(c.Request().Header.Get(echo.HeaderAuthorization), "Bearer ") {
		return true
	}
	return correctedAPIPath(p) != ""
}

// correctedAPIPath returns the right path when p is a gateway path with
// its /v1 doubled or missing, or "".
func correctedAPIPath(p string) string {
	if rest, ok := strings.CutPrefix(p, "/v1/v1/"); ok {
		for strings.HasPrefix(rest, "v1/") {
			rest = strings.TrimPrefix(rest, "v1/")
		}
		return "/v1/" + rest
	}
	for _, ap := range apiPaths {
		if p == ap || strings.HasPrefix(p, ap+"/") {
			return "/v1" + p
		}
	}
	return ""
}

func notFoundMessage(c echo.Context) string {
	p := c.Request().URL.Path
	if fixed := correctedAPIPath(p); fixed != "" {
		base := "the base URL has one /v1 too many"
		if !strings.HasPrefix(p, "/v1/") {
			base = "the base URL is missing /v1"
		}
		return "No route for " + c.Request().Method + " " + p + ": " + base + ". Use " + scheme(c) + "://" + c.Request().Host + fixed + " (base URL " + scheme(c) + "://" + c.Request().Host + "/v1)."
	}
	if strings.HasPrefix(p, "/v1") {
		return "No route for " + c.Request().Method + " " + p + ". See GET /v1/models for the models and the API reference for the paths."
	}
	return "No route for " + c.Request().Method + " " + p + "."
}

func scheme(c echo.Context) string {
	if c.IsTLS() {
		return "https"
	}
	return "http"
}
