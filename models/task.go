package models

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
)

// Task statuses.
const (
	TaskRunning   = "running"
	TaskSucceeded = "succeeded"
	TaskFailed    = "failed"
	TaskCancelled = "cancelled"
	TaskExpired   = "expired"
)

// Task is an async job (a video, say) with a fixed price.
type Task struct {
	ID          string
	AccountID   string
	KeyID       string
	RequestID   string // the POST /v1/tasks call, whose row holds the task's price
	Model       string
	UpstreamID  string
	Status      string
	PriceMicros int64
	Result      string
	Error       string
	CreatedAt   time.Time
	ExpiresAt   time.Time
	EndedAt     *time.Time
}

// ErrTaskEnded says a task can no longer change: it already ended.
func errTaskEnded(t *Task) error {
	return Errorf(ECONFLICT, "The task %s has already ended (%s); nothing was changed.", t.ID, t.Status)
}

// CreateTask stores a task whose hold and request row StartCall wrote.
func (s *Store) CreateTask(ctx context.Context, t *Task) error {
	return s.db.w.WithContext(ctx).Create(t).Error
}

// TaskOf returns a task of an account; another account's is ErrNotFound.
func (s *Store) TaskOf(ctx context.Context, accountID, id string) (*Task, error) {
	var t Task
	err := s.db.w.WithContext(ctx).Where("id = ? AND account_id = ?", id, accountID).Take(&t).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	return &t, err
}

// RunningTasks returns every task that has not ended, oldest first, for
// the runner to resume after a restart.
func (s *Store) RunningTasks(ctx context.Context) ([]Task, error) {
	var out []Task
	err := s.db.w.WithContext(ctx).Where("status = ?", TaskRunning).Order("id").Find(&out).Error
	return out, err
}

// outcomeOfTask is the billing outcome of the request that made a task.
var outcomeOfTask = map[string]string{
	TaskSucceeded: OutcomeCharged,
	TaskFailed:    OutcomeNotChargedFailed,
	TaskCancelled: OutcomeNotChargedCancel,
	TaskExpired:   OutcomeNotChargedExpired,
}

var (
	qEndTask = newQuery(`UPDATE tasks SET status = ?, result = ?, error = ?, ended_at = ?
		WHERE id = ? AND status = '` + TaskRunning + `'`)
	qTaskOutcome = newQuery(`UPDATE requests SET billing_outcome = ?, charged_micros = ?, outcome_detail = ?,
		completed_at = ? WHERE id = ?`)
)

// taskEnded refuses to end a task that already ended, having written
// nothing.
type taskEnded struct{}

func (taskEnded) Error() string { return "task already ended" }
func (taskEnded) refused()      {}

// EndTask ends a running task exactly once, in one transaction: success
// captures its price, failure, cancel and expiry release it, and the
// originating request's outcome follows. A task that already ended is an
// ECONFLICT error and nothing changes.
//
// A task that succeeds after the reaper expired its hold (its end could
// not be written in time) is charged all the same, late, as a call is
// (see FinishCall): its result was delivered.
func (s *Store) EndTask(ctx context.Context, t *Task, status, result, errMsg string) error {
	outcome, ok := outcomeOfTask[status]
	if !ok {
		return errors.New("end task: unknown status " + status)
	}
	// The hold is read first: what it holds, and from whom, never changes;
	// whether it is still open is decided by endHold's guarded update.
	var r Request
	if err := s.db.w.WithContext(ctx).Where("id = ?", t.RequestID).Take(&r).Error; err != nil {
		return err
	}
	h := holdOf(&r)
	holdStatus, charged := HoldReleased, int64(0)
	switch status {
	case TaskSucceeded:
		holdStatus, charged = HoldCaptured, t.PriceMicros
	case TaskExpired:
		holdStatus = HoldExpired
	}
	detail := "task " + status
	if errMsg != "" {
		detail += ": " + errMsg
	}
	now := time.Now().UTC()
	err := s.write(ctx, func(w *wtx) error {
		n, err := w.exec(qEndTask, status, result, errMsg, now, t.ID)
		if err != nil {
			return err
		}
		if n == 0 {
			return taskEnded{}
		}
		ok, err := endHold(w, h, holdStatus, charged, now)
		if err != nil {
			return err
		}
		if !ok { // the hold had already expired, and the request says so
			if charged == 0 {
				return nil
			}
			r.OutcomeDetail = detail
			return chargeLate(w, h, &r, charged, outcome, now)
		}
		w.countUsage(h.AccountID, h.KeyID, &r, outcome, charged, now)
		return w.later(qTaskOutcome, outcome, charged, detail, now, t.RequestID)
	})
	if errors.As(err, new(taskEnded)) {
		var cur Task
		if err := s.db.w.WithContext(ctx).Where("id = ?", t.ID).Take(&cur).Error; err != nil {
			return err
		}
		return errTaskEnded(&cur)
	}
	return err
}

// ExpireTasks ends, as expired, every running task past its expiry.
func (s *Store) ExpireTasks(ctx context.Context, now time.Time) (int, error) {
	var due []Task
	if err := s.db.w.WithContext(ctx).Where("status = ? AND expires_at < ?", TaskRunning, now.UTC()).
		Order("expires_at").Limit(500).Find(&due).Error; err != nil {
		return 0, err
	}
	n := 0
	for i := range due {
		err := s.EndTask(ctx, &due[i], TaskExpired, "", "the task did not finish before it expired")
		switch {
		case err == nil:
			n++
		case ErrorCode(err) == ECONFLICT: // another instance ended it first
		default:
			return n, err
		}
	}
	return n, nil
}
