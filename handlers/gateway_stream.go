package handlers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
	"ttconsole/upstream"
)

// streamChat passes an SSE stream through chunk by chunk, counting the
// tokens delivered, and settles on real usage however the stream ends:
// the final usage chunk when it completes, the delivered tokens when the
// client goes away or the upstream breaks.
func (a *App) streamChat(c echo.Context, gc *call, req *upstream.ChatRequest, m *models.CatalogModel, maxTokens int) error {
	prompt := req.PromptTokens()
	h, err := a.hold(c, gc, chatHold(req, gc.body, maxTokens, m))
	if err != nil {
		return err
	}
	body := withField(gc.body, "max_tokens", maxTokens)
	body = withField(body, "stream_options", map[string]bool{"include_usage": true})

	// The client's context: when it goes away, the upstream call is cancelled.
	ctx, cancel := context.WithCancel(c.Request().Context())
	defer cancel()
	headerCtx, stopHeaderTimer := context.WithCancel(ctx)
	timer := time.AfterFunc(a.UpstreamTimeout, stopHeaderTimer)
	res, err := a.Upstream.Post(headerCtx, "/v1/chat/completions", body)
	timedOut := !timer.Stop()
	if err != nil {
		if timedOut {
			err = context.DeadlineExceeded
		}
		e := upstreamError(nil, err)
		return a.settleFailure(c, gc, h, e, outcomeOf(e))
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		e := upstreamError(res, nil)
		return a.settleFailure(c, gc, h, e, outcomeOf(e))
	}

	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	w.Flush()

	wantsUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	skipEvent := false // the rest of an event not passed on
	var (
		delivered  int // completion tokens passed to the client
		finalUsage *upstream.Usage
		done       bool
		clientGone bool
		readErr    error
	)
	rd := bufio.NewReaderSize(res.Body, 16<<10)
	for {
		line, err := rd.ReadBytes('\n')
		if len(line) > 0 {
			tokens, usage, isDone := inspectSSELine(line)
			blank := len(bytes.TrimSpace(line)) == 0
			pass := !(blank && skipEvent)
			skipEvent = false
			if usage != nil {
				finalUsage = usage
				if !wantsUsage && tokens == 0 {
					// The usage chunk was asked for by the gateway, not the client.
					pass, skipEvent = false, true
				}
			}
			if pass {
				if _, werr := w.Write(line); werr != nil {
					clientGone = true
					break
				}
				if blank {
					w.Flush() // end of an event
				}
			}
			delivered += tokens
			if isDone {
				done = true
				w.Flush()
				break
			}
		}
		if err != nil {
			readErr = err
			break
		}
	}
	if ctx.Err() != nil && !done {
		clientGone = true
	}
	cancel() // stop the upstream now, whatever happened

	gc.row.Status = http.StatusOK
	gc.row.LatencyMS = time.Since(gc.row.CreatedAt).Milliseconds()
	gc.row.PromptTokens, gc.row.CompletionTokens = prompt, delivered
	switch {
	case done && finalUsage != nil:
		gc.row.PromptTokens, gc.row.CompletionTokens = finalUsage.PromptTokens, finalUsage.CompletionTokens
		gc.row.BillingOutcome = models.OutcomeCharged
	case done:
		gc.row.BillingOutcome = models.OutcomeCharged
	case clientGone:
		gc.row.BillingOutcome = models.OutcomeChargedPartial
		gc.row.OutcomeDetail = fmt.Sprintf("client disconnected after %d tokens", delivered)
	default:
		gc.row.BillingOutcome = models.OutcomeChargedPartial
		gc.row.OutcomeDetail = fmt.Sprintf("stream cut off by upstream after %d tokens", delivered)
		gc.row.ErrorType = "upstream_error"
		gc.row.ErrorMessage = "The model server broke the stream after " + fmt.Sprint(delivered) + " tokens; charged for the tokens delivered."
		gc.row.ErrorBody = errorBody(gc.row.ErrorType, gc.row.ErrorMessage)
		if readErr != nil && !errors.Is(readErr, io.EOF) {
			a.Log.Info("upstream stream broke", "request_id", gc.row.ID, "err", readErr.Error())
		}
		// Tell the client in the stream itself, as its last event.
		fmt.Fprintf(w, "data: %s\n\n", gc.row.ErrorBody)
		w.Flush()
	}
	cost := models.TokenCost(gc.row.PromptTokens, gc.row.CompletionTokens, m.InputMicrosPerMTok, m.OutputMicrosPerMTok)
	if err := a.Store.FinishCall(context.WithoutCancel(c.Request().Context()), h, &gc.row, a.costWithinHold(gc, h, cost)); err != nil {
		a.Log.Error("settle stream", "request_id", gc.row.ID, "err", err.Error())
	}
	return nil
}

// inspectSSELine reads one line of an OpenAI SSE stream: the completion
// tokens of a content delta, the usage of a usage chunk, and [DONE].
func inspectSSELine(line []byte) (tokens int, usage *upstream.Usage, done bool) {
	data, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r\n"), []byte("data:"))
	if !ok {
		return 0, nil, false
	}
	data = bytes.TrimSpace(data)
	if bytes.Equal(data, []byte("[DONE]")) {
		return 0, nil, true
	}
	var chunk struct {
		Choices []struct {
			Delta struct {
				Content string `json:"content"`
			} `json:"delta"`
		} `json:"choices"`
		Usage *upstream.Usage `json:"usage"`
	}
	if json.Unmarshal(data, &chunk) != nil {
		return 0, nil, false
	}
	for _, ch := range chunk.Choices {
		tokens += upstream.Tokens(ch.Delta.Content)
	}
	return tokens, chunk.Usage, false
}
