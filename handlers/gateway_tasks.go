package handlers

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
	"ttconsole/upstream"
)

// taskJSON is a task as the API shows it.
type taskJSON struct {
	ID          string     `json:"id"`
	Object      string     `json:"object"`
	Model       string     `json:"model"`
	Status      string     `json:"status"`
	PriceMicros int64      `json:"price_micros"`
	RequestID   string     `json:"request_id"`
	Result      string     `json:"result,omitempty"`
	Error       string     `json:"error,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   time.Time  `json:"expires_at"`
	EndedAt     *time.Time `json:"ended_at"`
}

func toTaskJSON(t *models.Task) taskJSON {
	return taskJSON{ID: t.ID, Object: "task", Model: t.Model, Status: t.Status, PriceMicros: t.PriceMicros,
		RequestID: t.RequestID, Result: t.Result, Error: t.Error, CreatedAt: t.CreatedAt.UTC(),
		ExpiresAt: t.ExpiresAt.UTC(), EndedAt: t.EndedAt}
}

// createTask serves POST /v1/tasks: the task's fixed price is held now and
// captured only if it succeeds.
func (a *App) createTask(c echo.Context) error {
	gc := callOf(c)
	if err := a.admit(c, gc, true); err != nil {
		return err
	}
	var req upstream.TaskRequest
	if err := decodeJSON(gc.body, &req); err != nil {
		return err
	}
	gc.row.Model = truncate(req.Model, 100)
	m, err := a.catalogModel(c, req.Model, "task", "/v1/tasks")
	if err != nil {
		return err
	}
	if req.Input == "" {
		return invalid("The field \"input\" is required: describe what the task should make.")
	}
	if err := checkModel(gc, req.Model); err != nil {
		return err
	}
	gc.row.Status = http.StatusAccepted
	// The hold outlives the task's own expiry, so the task runner, not the
	// hold reaper, normally ends it.
	h, err := a.holdFor(c, gc, m.TaskPriceMicros, a.TaskTTL+time.Minute)
	if err != nil {
		return err
	}
	out, apiErr := a.forward(c, "/v1/tasks", gc.body, http.StatusAccepted)
	if apiErr != nil {
		return a.settleFailure(c, gc, h, apiErr, outcomeOf(apiErr))
	}
	var st upstream.TaskStatus
	if err := json.Unmarshal(out, &st); err != nil || st.ID == "" {
		return a.settleFailure(c, gc, h, apiError(TypeUpstreamError,
			"The model server's answer could not be read. Not charged; retry with backoff."), models.OutcomeNotChargedFailed)
	}
	// The task's time runs from its hold, so that it expires a minute
	// before the hold does however long the upstream took to take it.
	t := &models.Task{
		ID: a.Store.NewID("task"), AccountID: gc.key.AccountID, KeyID: gc.key.ID, RequestID: gc.row.ID,
		Model: m.ID, UpstreamID: st.ID, Status: models.TaskRunning, PriceMicros: m.TaskPriceMicros,
		CreatedAt: time.Now().UTC(), ExpiresAt: h.CreatedAt.Add(a.TaskTTL),
	}
	if err := a.Store.CreateTask(context.WithoutCancel(c.Request().Context()), t); err != nil {
		a.Log.Error("create task", "request_id", gc.row.ID, "err", err.Error())
		return a.settleFailure(c, gc, h, apiError(TypeServiceUnavailable,
			"The task could not be recorded. Not charged; retry shortly."), models.OutcomeNotChargedFailed)
	}
	a.watchTask(*t)
	gc.keptAnswer(toTaskJSON(t))
	return c.JSON(http.StatusAccepted, toTaskJSON(t))
}

// getTask serves GET /v1/tasks/{id}.
func (a *App) getTask(c echo.Context) error {
	gc := callOf(c)
	if err := a.admit(c, gc, false); err != nil {
		return err
	}
	t, err := a.taskOf(c, gc)
	if err != nil {
		return err
	}
	return a.answerFree(c, gc, http.StatusOK, toTaskJSON(t))
}

// cancelTask serves POST /v1/tasks/{id}/cancel: the hold is released and
// the task's request is not charged. A task that already ended stays as it is.
func (a *App) cancelTask(c echo.Context) error {
	gc := callOf(c)
	if err := a.admit(c, gc, true); err != nil {
		return err
	}
	t, err := a.taskOf(c, gc)
	if err != nil {
		return err
	}
	ctx := context.WithoutCancel(c.Request().Context())
	err = a.Store.EndTask(ctx, t, models.TaskCancelled, "", "cancelled by the client")
	if models.ErrorCode(err) == models.ECONFLICT {
		return &APIError{Status: http.StatusConflict, Type: TypeInvalidRequest, Message: err.Error()}
	}
	if err != nil {
		return err
	}
	// Tell the upstream too; the money is already settled either way.
	if res, err := a.Upstream.Post(ctx, "/v1/tasks/"+url.PathEscape(t.UpstreamID)+"/cancel", []byte("{}")); err == nil {
		res.Body.Close()
	}
	t, err = a.Store.TaskOf(ctx, t.AccountID, t.ID)
	if err != nil {
		return err
	}
	return a.answerFree(c, gc, http.StatusOK, toTaskJSON(t))
}

func (a *App) taskOf(c echo.Context, gc *call) (*models.Task, error) {
	id := c.Param("id")
	if !plain(id) { // no task has such an id
		return nil, apiError(TypeNotFound, "No task with this id in your account.")
	}
	t, err := a.Store.TaskOf(c.Request().Context(), gc.key.AccountID, id)
	if models.ErrorCode(err) == models.ENOTFOUND {
		return nil, apiError(TypeNotFound, "No task with this id in your account.")
	}
	return t, err
}

// ResumeTasks watches again every task still running, after a restart:
// each resumes, or expires once past its expiry.
func (a *App) ResumeTasks(ctx context.Context) (int, error) {
	ts, err := a.Store.RunningTasks(ctx)
	if err != nil {
		return 0, err
	}
	for _, t := range ts {
		a.watchTask(t)
	}
	return len(ts), nil
}

// watchTask follows a task upstream until it ends or expires.
func (a *App) watchTask(t models.Task) {
	a.tasks.Add(1)
	go func() {
		defer a.tasks.Done()
		tick := time.NewTicker(a.TaskPoll)
		defer tick.Stop()
		for {
			status, result, errMsg := a.pollTask(&t)
			if status == models.TaskRunning && !time.Now().Before(t.ExpiresAt) {
				status, errMsg = models.TaskExpired, "the task did not finish before it expired"
			}
			if status != models.TaskRunning {
				err := a.Store.EndTask(a.background, &t, status, result, errMsg)
				if err == nil || models.ErrorCode(err) == models.ECONFLICT {
					return
				}
				a.Log.Error("end task", "task", t.ID, "err", err.Error()) // try again on the next tick
			}
			select {
			case <-a.background.Done():
				return // shutting down; the next start resumes it
			case <-tick.C:
			}
		}
	}()
}

// pollTask asks the upstream how a task stands; any doubt means running.
func (a *App) pollTask(t *models.Task) (status, result, errMsg string) {
	ctx, cancel := context.WithTimeout(a.background, 10*time.Second)
	defer cancel()
	res, err := a.Upstream.Get(ctx, "/v1/tasks/"+url.PathEscape(t.UpstreamID))
	if err != nil {
		return models.TaskRunning, "", ""
	}
	defer res.Body.Close()
	var st upstream.TaskStatus
	if res.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&st) != nil {
		return models.TaskRunning, "", ""
	}
	switch st.Status {
	case "succeeded":
		return models.TaskSucceeded, truncate(st.Result, 2000), ""
	case "failed":
		return models.TaskFailed, "", truncate(st.Error, 500)
	case "cancelled":
		return models.TaskCancelled, "", "cancelled upstream"
	}
	return models.TaskRunning, "", ""
}

// Close stops background work (task watchers) and waits for it.
func (a *App) Close() {
	if a.stopBackground != nil {
		a.stopBackground()
	}
	a.tasks.Wait()
	if a.bodies != nil {
		<-a.bodies.done // what was queued is written
	}
}
