package handlers

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
)

// listModels serves GET /v1/models: the catalogue, in OpenAI's list shape.
func (a *App) listModels(c echo.Context) error {
	gc := callOf(c)
	if err := a.admit(c, gc, false); err != nil {
		return err
	}
	ms, err := a.Store.Models(c.Request().Context())
	if err != nil {
		return err
	}
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		OwnedBy string `json:"owned_by"`
		Kind    string `json:"kind"`
		Allowed bool   `json:"allowed"`
	}
	data := make([]model, 0, len(ms))
	for _, m := range ms {
		data = append(data, model{ID: m.ID, Object: "model", OwnedBy: "tt", Kind: m.Kind, Allowed: gc.key.AllowsModel(m.ID)})
	}
	return a.answerFree(c, gc, http.StatusOK, map[string]any{"object": "list", "data": data})
}

type timelineJSON struct {
	At           time.Time `json:"at"`
	Event        string    `json:"event"`
	AmountMicros int64     `json:"amount_micros"`
}

// requestJSON is a request as GET /v1/requests/{id} shows it.
type requestJSON struct {
	ID             string           `json:"id"`
	CreatedAt      time.Time        `json:"created_at"`
	Method         string           `json:"method"`
	Path           string           `json:"path"`
	Model          string           `json:"model"`
	Status         int              `json:"status"`
	Error          *apiErrorDetail  `json:"error"`
	Key            *keyRefJSON      `json:"key"`
	ClientIP       string           `json:"client_ip"`
	Stream         bool             `json:"stream"`
	LatencyMS      int64            `json:"latency_ms"`
	Usage          map[string]int   `json:"usage"`
	HoldMicros     int64            `json:"hold_micros"`
	ChargedMicros  int64            `json:"charged_micros"`
	BillingOutcome string           `json:"billing_outcome"`
	Timeline       []timelineJSON   `json:"timeline"`
	RateLimit      map[string]int64 `json:"rate_limit,omitempty"`
}

// rateLimitJSON is the rate-limit headers r was answered with, those it
// had: limit, remaining, reset (Unix seconds) and, for a 429,
// retry_after (seconds); nil for a call answered without them.
func rateLimitJSON(r *models.Request) map[string]int64 {
	rl := map[string]int64{}
	if r.RatelimitLimit != nil {
		rl["limit"] = int64(*r.RatelimitLimit)
	}
	if r.RatelimitRemaining != nil {
		rl["remaining"] = int64(*r.RatelimitRemaining)
	}
	if r.RatelimitReset != nil {
		rl["reset"] = *r.RatelimitReset
	}
	if r.RetryAfter != nil {
		rl["retry_after"] = int64(*r.RetryAfter)
	}
	if len(rl) == 0 {
		return nil
	}
	return rl
}

type keyRefJSON struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Prefix string `json:"prefix"`
}

// getRequest serves GET /v1/requests/{id}: one request of the key's account.
func (a *App) getRequest(c echo.Context) error {
	gc := callOf(c)
	if err := a.admit(c, gc, false); err != nil {
		return err
	}
	ctx := c.Request().Context()
	id := c.Param("id")
	if !plain(id) { // no request has such an id
		return apiError(TypeNotFound, "No request with this id in your account.")
	}
	r, err := a.Store.RequestOf(ctx, gc.key.AccountID, id)
	if models.ErrorCode(err) == models.ENOTFOUND {
		return apiError(TypeNotFound, "No request with this id in your account.")
	}
	if err != nil {
		return err
	}
	out := requestJSON{
		ID: r.ID, CreatedAt: r.CreatedAt.UTC(), Method: r.Method, Path: r.Path, Model: r.Model, Status: r.Status,
		ClientIP: r.ClientIP, Stream: r.Stream, LatencyMS: r.LatencyMS,
		Usage:      map[string]int{"prompt_tokens": r.PromptTokens, "completion_tokens": r.CompletionTokens},
		HoldMicros: r.HoldMicros, ChargedMicros: r.ChargedMicros, BillingOutcome: r.BillingOutcome,
		Timeline: []timelineJSON{},
	}
	if r.ErrorType != "" {
		out.Error = &apiErrorDetail{Type: ErrorType(r.ErrorType), Message: r.ErrorMessage}
	}
	out.RateLimit = rateLimitJSON(r)
	if r.KeyID != nil {
		if k, err := a.Store.APIKeyOf(ctx, gc.key.AccountID, *r.KeyID); err == nil {
			out.Key = &keyRefJSON{ID: k.ID, Name: k.Name, Prefix: k.Prefix}
		}
	}
	evs, err := a.Store.Timeline(ctx, r.ID)
	if err != nil {
		return err
	}
	for _, e := range evs {
		out.Timeline = append(out.Timeline, timelineJSON{At: e.CreatedAt.UTC(), Event: e.Event, AmountMicros: e.AmountMicros})
	}
	return a.answerFree(c, gc, http.StatusOK, out)
}

// getAccount serves GET /v1/account: the wallet and the calling key.
func (a *App) getAccount(c echo.Context) error {
	gc := callOf(c)
	if err := a.admit(c, gc, false); err != nil {
		return err
	}
	ctx := c.Request().Context()
	w, err := a.Store.WalletOf(ctx, gc.key.AccountID)
	if err != nil {
		return err
	}
	spent, held, err := a.Store.KeyMonthUsage(ctx, gc.key.ID, time.Now().UTC())
	if err != nil {
		return err
	}
	models := gc.key.ModelList()
	if models == nil {
		models = []string{}
	}
	ips := []string{}
	for _, p := range gc.key.IPPrefixes() {
		ips = append(ips, p.String())
	}
	return a.answerFree(c, gc, http.StatusOK, map[string]any{
		"balance_micros":   w.BalanceMicros,
		"held_micros":      w.HeldMicros,
		"available_micros": w.Available(),
		"debt_micros":      w.DebtMicros,
		"key": map[string]any{
			"id": gc.key.ID, "name": gc.key.Name, "models": models, "allowed_ips": ips,
			"monthly_limit_micros": gc.key.MonthlyLimitMicros, "month_to_date_micros": spent + held,
			"rpm": gc.key.RPM,
		},
	})
}
