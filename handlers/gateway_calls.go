package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
	"ttconsole/upstream"
)

// admit runs the checks every gateway call starts with, in the platform's
// order: body size, key, source IP, rate limit.
func (a *App) admit(c echo.Context, gc *call, withBody bool) error {
	if withBody {
		if err := a.readBody(c, gc); err != nil {
			return err
		}
	}
	if err := a.authenticate(c, gc); err != nil {
		return err
	}
	if err := a.checkIP(c, gc); err != nil {
		a.rateLimitHeaders(c, gc)
		return err
	}
	return a.rateLimit(c, gc)
}

// catalogModel returns the model a call names, checking that it exists
// and is of the kind the endpoint serves.
func (a *App) catalogModel(c echo.Context, id, kind, endpoint string) (*models.CatalogModel, error) {
	if id == "" {
		return nil, invalid("The field \"model\" is required. GET /v1/models lists the models.")
	}
	m, err := a.Store.ModelByID(c.Request().Context(), id)
	if models.ErrorCode(err) == models.ENOTFOUND {
		return nil, invalid("Unknown model %q. GET /v1/models lists the models.", truncate(id, 100))
	}
	if err != nil {
		return nil, err
	}
	if m.Kind != kind {
		return nil, invalid("The model %q is a %s model; %s serves %s models.", id, m.Kind, endpoint, kind)
	}
	return m, nil
}

// hold places the call's hold, turning a refusal into the platform's 402s.
func (a *App) hold(c echo.Context, gc *call, amount int64) (*models.Hold, error) {
	return a.holdFor(c, gc, amount, a.HoldTTL)
}

// holdFor places a hold that expires after ttl.
func (a *App) holdFor(c echo.Context, gc *call, amount int64, ttl time.Duration) (*models.Hold, error) {
	h, err := a.Store.StartCall(c.Request().Context(), &gc.row, gc.key.ID, gc.key.MonthlyLimitMicros, amount, ttl)
	if err != nil {
		return nil, holdError(err)
	}
	gc.logged = true
	return h, nil
}

// holdEarly places the call's hold but returns as soon as it is decided,
// so the upstream call can start while the hold commits. committed waits
// for the commit; until it returns nil the call must not answer, settle
// or change its row. When it fails nothing was held, and its error is the
// answer (the upstream's, if any, is thrown away).
func (a *App) holdEarly(c echo.Context, gc *call, amount int64) (_ *models.Hold, committed func() error, _ error) {
	h, done, err := a.Store.StartCallEarly(c.Request().Context(), &gc.row, gc.key.ID, gc.key.MonthlyLimitMicros, amount, a.HoldTTL)
	if err != nil {
		return nil, nil, holdError(err)
	}
	return h, func() error {
		if err := done(); err != nil {
			return holdError(err)
		}
		gc.logged = true
		return nil
	}, nil
}

// holdError turns a refused hold into the platform's 402s.
func holdError(err error) error {
	var qe *models.QuotaError
	var se *models.ShortfallError
	switch {
	case errors.As(err, &qe):
		return apiError(TypeKeyQuotaExceeded, qe.Error()+" Raise the key's monthly limit in the console, or use another key.")
	case errors.As(err, &se):
		return apiError(TypeBillingShortfall, se.Error()+" Go to Billing in the console to recharge.")
	}
	return err
}

// settleFailure releases the hold of a call that did not complete and
// records why, then returns the error the client gets.
func (a *App) settleFailure(c echo.Context, gc *call, h *models.Hold, apiErr *APIError, outcome string) error {
	gc.row.Status, gc.row.ErrorType, gc.row.ErrorMessage = apiErr.Status, string(apiErr.Type), apiErr.Message
	gc.row.ErrorBody = errorBody(apiErr.Type, apiErr.Message)
	gc.row.LatencyMS = time.Since(gc.row.CreatedAt).Milliseconds()
	if gc.row.OutcomeDetail == "" {
		gc.row.OutcomeDetail = apiErr.Message
	}
	// Settle even when the client has gone: the money must not wait.
	ctx := context.WithoutCancel(c.Request().Context())
	if err := a.Store.ReleaseCall(ctx, h, &gc.row, outcome); err != nil {
		a.Log.Error("release hold", "request_id", gc.row.ID, "err", err.Error())
	}
	return apiErr
}

// upstreamError maps a failed upstream call to the platform's 5xx (or a
// 400 the upstream found in the parameters), never passing its body on.
func upstreamError(res *http.Response, err error) *APIError {
	if err != nil {
		var ne net.Error
		switch {
		case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
			return apiError(TypeUpstreamTimeout, "")
		case errors.Is(err, context.Canceled):
			return apiError(TypeCancelled, "")
		}
		return apiError(TypeServiceUnavailable, "The model server could not be reached. Not charged; retry with backoff.")
	}
	switch {
	case res.StatusCode == http.StatusBadRequest || res.StatusCode == http.StatusUnprocessableEntity:
		msg := "the parameters were refused"
		var body struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if b, err := io.ReadAll(io.LimitReader(res.Body, 64<<10)); err == nil && json.Unmarshal(b, &body) == nil && body.Error.Message != "" {
			msg = truncate(models.RedactSecrets(body.Error.Message), 300) // it may echo the prompt
		}
		return invalid("The model server refused the request: %s. Not charged.", msg)
	case res.StatusCode == http.StatusServiceUnavailable || res.StatusCode == http.StatusTooManyRequests:
		return apiError(TypeServiceUnavailable,
			fmt.Sprintf("The model server is temporarily unavailable (it answered %d). Not charged; retry with backoff.", res.StatusCode))
	case res.StatusCode == http.StatusGatewayTimeout:
		return apiError(TypeUpstreamTimeout, "The model server timed out (it answered 504). Not charged; retry with backoff.")
	}
	return apiError(TypeUpstreamError, fmt.Sprintf("The model server failed (it answered %d). Not charged; retry with backoff.", res.StatusCode))
}

// forwardForUsage sends the call upstream and returns its JSON answer and
// the usage it reports, which is what the call is charged for.
func (a *App) forwardForUsage(c echo.Context, path string, body []byte) ([]byte, *upstream.Usage, *APIError) {
	out, apiErr := a.forward(c, path, body, http.StatusOK)
	if apiErr != nil {
		return nil, nil, apiErr
	}
	var parsed struct {
		Usage *upstream.Usage `json:"usage"`
	}
	if err := json.Unmarshal(out, &parsed); err != nil || !plausible(parsed.Usage) {
		return nil, nil, apiError(TypeUpstreamError, "The model server's answer could not be read. Not charged; retry with backoff.")
	}
	return out, parsed.Usage, nil
}

// plausible reports whether an upstream's usage can be billed: it is there
// and each count is between zero and the most the request log stores
// (PostgreSQL's integer, some two billion tokens).
func plausible(u *upstream.Usage) bool {
	ok := func(n int) bool { return n >= 0 && n <= math.MaxInt32 }
	return u != nil && ok(u.PromptTokens) && ok(u.CompletionTokens) && ok(u.TotalTokens)
}

// forward sends the call upstream and returns its JSON answer when the
// upstream answers with status want (or 200).
func (a *App) forward(c echo.Context, path string, body []byte, want int) ([]byte, *APIError) {
	ctx, cancel := context.WithTimeout(c.Request().Context(), a.UpstreamTimeout)
	defer cancel()
	res, err := a.Upstream.Post(ctx, path, body)
	if err != nil {
		return nil, upstreamError(nil, err)
	}
	defer res.Body.Close()
	if res.StatusCode != want && res.StatusCode != http.StatusOK {
		return nil, upstreamError(res, nil)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, 32<<20))
	if err != nil {
		return nil, upstreamError(nil, err)
	}
	return b, nil
}

func outcomeOf(e *APIError) string {
	if e.Type == TypeCancelled {
		return models.OutcomeNotChargedCancel
	}
	return models.OutcomeNotChargedFailed
}

// chatCompletions serves POST /v1/chat/completions.
func (a *App) chatCompletions(c echo.Context) error {
	gc := callOf(c)
	if err := a.admit(c, gc, true); err != nil {
		return err
	}
	req, perr := parseChatRequest(gc.body)
	if perr != nil {
		if req != nil {
			gc.row.Model, gc.row.Stream = truncate(req.Model, 100), req.Stream
		}
		return perr
	}
	gc.row.Model, gc.row.Stream = truncate(req.Model, 100), req.Stream
	m, err := a.catalogModel(c, req.Model, "chat", "/v1/chat/completions")
	if err != nil {
		return err
	}
	maxTokens := models.DefaultMaxTokens
	if b := req.OutputBudget(); b != nil {
		maxTokens = *b
	}
	if maxTokens > m.MaxOutputTokens {
		return invalid("The field %q must be between 1 and %d for %s.", budgetField(req), m.MaxOutputTokens, m.ID)
	}
	if err := checkModel(gc, req.Model); err != nil {
		return err
	}
	if req.Stream {
		return a.streamChat(c, gc, req, m, maxTokens)
	}
	h, committed, err := a.holdEarly(c, gc, chatHold(req, gc.body, maxTokens, m))
	if err != nil {
		return err
	}
	body := gc.body
	if req.MaxTokens == nil {
		// The upstream must not answer more than was held for, whichever
		// name of the budget it honours.
		body = withField(body, "max_tokens", maxTokens)
	}
	out, usage, apiErr := a.forwardForUsage(c, "/v1/chat/completions", body)
	if err := committed(); err != nil {
		return err
	}
	if apiErr != nil {
		return a.settleFailure(c, gc, h, apiErr, outcomeOf(apiErr))
	}
	gc.row.PromptTokens, gc.row.CompletionTokens = usage.PromptTokens, usage.CompletionTokens
	cost := models.TokenCost(usage.PromptTokens, usage.CompletionTokens, m.InputMicrosPerMTok, m.OutputMicrosPerMTok)
	return a.settleSuccess(c, gc, h, cost, out)
}

// parseChatRequest reads and checks a chat request's parameters, naming
// the field at fault. The model's existence and limits are checked later.
func parseChatRequest(body []byte) (*upstream.ChatRequest, *APIError) {
	var req upstream.ChatRequest
	if err := decodeJSON(body, &req); err != nil {
		return nil, err
	}
	if req.Model == "" {
		return &req, invalid("The field \"model\" is required. GET /v1/models lists the models.")
	}
	if len(req.Messages) == 0 {
		return &req, invalid("The field \"messages\" is required: a non-empty list of {role, content}.")
	}
	for i, msg := range req.Messages {
		switch msg.Role {
		case "system", "user", "assistant", "developer", "tool":
		default:
			return &req, invalid("The field \"messages[%d].role\" must be one of system, user, assistant, developer or tool.", i)
		}
	}
	if req.MaxTokens != nil && *req.MaxTokens < 1 {
		return &req, invalid("The field \"max_tokens\" must be a positive number of tokens, not %d.", *req.MaxTokens)
	}
	if req.MaxCompletionTokens != nil && *req.MaxCompletionTokens < 1 {
		return &req, invalid("The field \"max_completion_tokens\" must be a positive number of tokens, not %d.", *req.MaxCompletionTokens)
	}
	if req.MaxTokens != nil && req.MaxCompletionTokens != nil && *req.MaxTokens != *req.MaxCompletionTokens {
		return &req, invalid("The fields \"max_tokens\" (%d) and \"max_completion_tokens\" (%d) disagree: send one of them.",
			*req.MaxTokens, *req.MaxCompletionTokens)
	}
	if req.N != nil && (*req.N < 1 || *req.N > maxChoices) {
		return &req, invalid("The field \"n\" must be a whole number of completions from 1 to %d, not %d.", maxChoices, *req.N)
	}
	return &req, nil
}

// maxChoices is the most completions one chat call may ask for.
const maxChoices = 128

// budgetField names the field that set a chat call's output budget.
func budgetField(req *upstream.ChatRequest) string {
	if req.MaxTokens == nil && req.MaxCompletionTokens != nil {
		return "max_completion_tokens"
	}
	return "max_tokens"
}

// chatHold is the most a chat call can cost at the upstream: n completions
// of maxTokens each, and a prompt of every byte of the body. The upstream
// bills tools, functions, response_format and content parts as prompt
// too; counting the whole body at the platform's 4 bytes a token bounds
// them all.
func chatHold(req *upstream.ChatRequest, body []byte, maxTokens int, m *models.CatalogModel) int64 {
	prompt := max(req.PromptTokens(), upstream.ByteTokens(len(body)))
	return models.TokenCost(prompt, req.Choices()*maxTokens, m.InputMicrosPerMTok, m.OutputMicrosPerMTok)
}

// costWithinHold caps a call's cost at its hold. Usage above the hold means
// the hold missed something the upstream bills: the call is charged the
// hold, and operators see it counted and logged.
func (a *App) costWithinHold(gc *call, h *models.Hold, cost int64) int64 {
	if cost <= h.AmountMicros {
		return cost
	}
	a.metrics.overHold.Inc()
	a.Log.Warn("upstream usage above the hold; charged the hold", "request_id", gc.row.ID, "model", gc.row.Model,
		"prompt_tokens", gc.row.PromptTokens, "completion_tokens", gc.row.CompletionTokens,
		"cost_micros", cost, "hold_micros", h.AmountMicros)
	return h.AmountMicros
}

// settleSuccess captures the call's cost and then answers the client.
func (a *App) settleSuccess(c echo.Context, gc *call, h *models.Hold, cost int64, out []byte) error {
	cost = a.costWithinHold(gc, h, cost)
	gc.row.Status = http.StatusOK
	gc.row.LatencyMS = time.Since(gc.row.CreatedAt).Milliseconds()
	if err := a.Store.FinishCall(context.WithoutCancel(c.Request().Context()), h, &gc.row, cost); err != nil {
		a.Log.Error("capture hold", "request_id", gc.row.ID, "err", err.Error())
		return apiError(TypeServiceUnavailable, "The call completed but could not be recorded; it will not be charged. Retry shortly.")
	}
	if gc.keep {
		gc.resp = out
	}
	return c.JSONBlob(http.StatusOK, out)
}

// embeddings serves POST /v1/embeddings.
func (a *App) embeddings(c echo.Context) error {
	gc := callOf(c)
	if err := a.admit(c, gc, true); err != nil {
		return err
	}
	var req upstream.EmbeddingsRequest
	if err := decodeJSON(gc.body, &req); err != nil {
		return err
	}
	gc.row.Model = truncate(req.Model, 100)
	m, err := a.catalogModel(c, req.Model, "embeddings", "/v1/embeddings")
	if err != nil {
		return err
	}
	if len(req.Input) == 0 || string(bytes.TrimSpace(req.Input)) == "null" {
		return invalid("The field \"input\" is required: a string or a list of strings.")
	}
	inputs, err := req.Inputs()
	if err != nil {
		return invalid("The field \"input\" must be a string or a list of strings.")
	}
	if len(inputs) == 0 || len(inputs) > 2048 {
		return invalid("The field \"input\" must hold 1 to 2048 strings.")
	}
	// The upstream bills its own count of the input; the whole body bounds it.
	prompt := upstream.ByteTokens(len(gc.body))
	sum := 0
	for _, in := range inputs {
		sum += upstream.Tokens(in)
	}
	prompt = max(prompt, sum)
	if err := checkModel(gc, req.Model); err != nil {
		return err
	}
	h, committed, err := a.holdEarly(c, gc, models.TokenCost(prompt, 0, m.InputMicrosPerMTok, 0))
	if err != nil {
		return err
	}
	out, usage, apiErr := a.forwardForUsage(c, "/v1/embeddings", gc.body)
	if err := committed(); err != nil {
		return err
	}
	if apiErr != nil {
		return a.settleFailure(c, gc, h, apiErr, outcomeOf(apiErr))
	}
	gc.row.PromptTokens = usage.PromptTokens
	return a.settleSuccess(c, gc, h, models.TokenCost(usage.PromptTokens, 0, m.InputMicrosPerMTok, 0), out)
}
