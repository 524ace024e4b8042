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
	"os"
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

	// The call's context ends when the client goes away, when the stream
	// reaches its maximum duration, or when its hold could not be kept
	// alive (see liveCalls); each cancels the upstream call, and its cause
	// says why the stream stopped.
	ctx, cancel := context.WithCancelCause(c.Request().Context())
	defer cancel(nil)
	ctx, cancelMax := context.WithTimeoutCause(ctx, a.StreamMax, errStreamMax)
	defer cancelMax()
	defer a.keepAlive(gc.row.ID, h.ExpiresAt, cancel)()
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
	// Each write has a deadline: a client that reads nothing for
	// StreamWriteTimeout is cut, and charged for what it was sent.
	rc := http.NewResponseController(w.Writer)
	defer rc.SetWriteDeadline(time.Time{}) // the connection may serve another request
	write := func(b []byte, flush bool) error {
		if err := rc.SetWriteDeadline(time.Now().Add(a.StreamWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		if flush {
			return rc.Flush()
		}
		return nil
	}
	w.Header().Set(echo.HeaderContentType, "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write(nil, true)

	wantsUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	skipEvent := false // the rest of an event not passed on
	var (
		delivered  int // completion tokens passed to the client
		finalUsage *upstream.Usage
		done       bool
		writeErr   error
		readErr    error
	)
	var kept *streamAssembly // the answer rebuilt, when the key keeps bodies
	if gc.keep {
		kept = &streamAssembly{}
	}
	rd := bufio.NewReaderSize(res.Body, 16<<10)
	for {
		line, err := rd.ReadBytes('\n')
		if len(line) > 0 {
			if ctx.Err() != nil {
				break // nothing more is delivered once the call must stop
			}
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
				// An event is flushed at its end, or at [DONE].
				if writeErr = write(line, blank || isDone); writeErr != nil {
					break
				}
				if kept != nil {
					kept.add(line)
				}
			}
			delivered += tokens
			if isDone {
				done = true
				break
			}
		}
		if err != nil {
			readErr = err
			break
		}
	}
	cause := context.Cause(ctx) // nil while the call's context is live
	cancel(nil)                 // stop the upstream now, whatever happened

	gc.row.Status = http.StatusOK
	gc.row.LatencyMS = time.Since(gc.row.CreatedAt).Milliseconds()
	gc.row.PromptTokens, gc.row.CompletionTokens = prompt, delivered
	// stopped tells the client, in the stream itself as its last event,
	// why it ended early, and records it on the row.
	stopped := func(typ ErrorType, msg string) {
		gc.row.ErrorType, gc.row.ErrorMessage = string(typ), msg
		gc.row.ErrorBody = errorBody(typ, msg)
		write([]byte("data: "+gc.row.ErrorBody+"\n\n"), true)
	}
	// A stream stopped before it delivered a token is not charged: the
	// upstream failed, or the client left, before anything was used.
	nothing := !done && delivered == 0
	when, charge := fmt.Sprintf("after %d tokens", delivered), "charged for the tokens delivered"
	if nothing {
		when, charge = "before any token", "not charged"
	}
	failed := models.OutcomeNotChargedFailed // the outcome when nothing was delivered
	switch {
	case done && finalUsage != nil:
		gc.row.PromptTokens, gc.row.CompletionTokens = finalUsage.PromptTokens, finalUsage.CompletionTokens
		gc.row.BillingOutcome = models.OutcomeCharged
	case done:
		gc.row.BillingOutcome = models.OutcomeCharged
	case errors.Is(cause, errStreamMax):
		gc.row.OutcomeDetail = fmt.Sprintf("stream stopped at the maximum duration of %s %s", a.StreamMax, when)
		stopped(TypeUpstreamTimeout, fmt.Sprintf("The stream reached the maximum duration of %s and was stopped %s; %s.", a.StreamMax, when, charge))
	case errors.Is(cause, errHoldLost) || errors.Is(cause, errHoldEnded):
		gc.row.OutcomeDetail = fmt.Sprintf("stream stopped %s: %s", when, cause)
		stopped(TypeServiceUnavailable, fmt.Sprintf("The stream was stopped %s because its billing hold could not be kept; %s. Retry shortly.", when, charge))
	case errors.Is(writeErr, os.ErrDeadlineExceeded):
		gc.row.OutcomeDetail = fmt.Sprintf("client read nothing for %s; cut %s", a.StreamWriteTimeout, when)
		failed = models.OutcomeNotChargedCancel
	case writeErr != nil || cause != nil:
		gc.row.OutcomeDetail = "client disconnected " + when
		failed = models.OutcomeNotChargedCancel
	default:
		gc.row.OutcomeDetail = "stream cut off by upstream " + when
		if readErr != nil && !errors.Is(readErr, io.EOF) {
			a.Log.Info("upstream stream broke", "request_id", gc.row.ID, "err", readErr.Error())
		}
		stopped(TypeUpstreamError, fmt.Sprintf("The model server broke the stream %s; %s.", when, charge))
	}
	if kept != nil {
		gc.resp, gc.chunks = kept.message(), kept.chunks
	}
	if nothing {
		gc.row.BillingOutcome = failed
		a.settleStream(c.Request().Context(), &gc.row, func(ctx context.Context, r *models.Request) error {
			return a.Store.ReleaseCall(ctx, h, r, failed)
		})
		return nil
	}
	if !done {
		gc.row.BillingOutcome = models.OutcomeChargedPartial
	}
	cost := a.costWithinHold(gc, h, models.TokenCost(gc.row.PromptTokens, gc.row.CompletionTokens, m.InputMicrosPerMTok, m.OutputMicrosPerMTok))
	a.settleStream(c.Request().Context(), &gc.row, func(ctx context.Context, r *models.Request) error {
		return a.Store.FinishCall(ctx, h, r, cost)
	})
	return nil
}

// settleStream settles a stream the client has already received. When the
// settlement cannot be written (the database is out of reach, say), it is
// tried again in the background, on a copy of the row, until it is, so
// that what was delivered is charged: if the reaper expired the hold
// meanwhile, the charge is made late (FinishCall), and a try after one
// that did commit changes nothing (a hold ends once). On shutdown it is
// tried a last time.
func (a *App) settleStream(ctx context.Context, row *models.Request, settle func(context.Context, *models.Request) error) {
	ctx = context.WithoutCancel(ctx) // the client may have gone: the money must not wait
	err := settle(ctx, row)
	if err == nil {
		return
	}
	a.Log.Error("settle stream", "request_id", row.ID, "err", err.Error(), "retrying", true)
	again := *row
	a.tasks.Add(1)
	go func() {
		defer a.tasks.Done()
		wait := 100 * time.Millisecond
		for last := false; ; {
			select {
			case <-a.background.Done():
				last = true
			case <-time.After(wait):
			}
			err := settle(ctx, &again)
			if err == nil {
				a.Log.Info("stream settled", "request_id", again.ID)
				return
			}
			if last {
				a.Log.Error("stream not settled before shutdown", "request_id", again.ID, "err", err.Error())
				return
			}
			wait = min(2*wait, 10*time.Second)
		}
	}()
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
	if !plausible(chunk.Usage) {
		return tokens, nil, false // the stream settles on the tokens delivered
	}
	return tokens, chunk.Usage, false
}
