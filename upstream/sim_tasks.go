package upstream

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The simulator's tasks keep no state: a task's id carries when it started,
// how long it runs and how it ends, so the simulator can answer for it after
// any restart, its own or the gateway's.

// TaskRequest is the part of a task request the platform reads.
type TaskRequest struct {
	Model    string            `json:"model"`
	Input    string            `json:"input"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// TaskStatus is how an upstream reports a task.
type TaskStatus struct {
	ID     string `json:"id"`
	Status string `json:"status"` // running | succeeded | failed | cancelled
	Result string `json:"result,omitempty"`
	Error  string `json:"error,omitempty"`
}

func (s *Simulator) registerTasks() {
	s.mux.HandleFunc("POST /v1/tasks", s.createTask)
	s.mux.HandleFunc("GET /v1/tasks/{id}", s.getTask)
	s.mux.HandleFunc("POST /v1/tasks/{id}/cancel", s.cancelTask)
}

func (s *Simulator) createTask(w http.ResponseWriter, r *http.Request) {
	var req TaskRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		simError(w, http.StatusBadRequest, "bad JSON: "+err.Error())
		return
	}
	d := readDirectives(req.Metadata, nil)
	if !sleep(r, d.delay) {
		return
	}
	if d.status != 0 && d.status != http.StatusOK && d.status != http.StatusAccepted {
		simError(w, d.status, fmt.Sprintf("simulated upstream status %d", d.status))
		return
	}
	dur := 2000
	if v, err := strconv.Atoi(req.Metadata["sim_duration_ms"]); err == nil && v >= 0 {
		dur = min(v, 24*3600*1000)
	}
	outcome := "succeeded"
	if req.Metadata["sim_outcome"] == "failed" {
		outcome = "failed"
	}
	id := fmt.Sprintf("simtask_%d_%d_%s", time.Now().UnixMilli(), dur, outcome)
	writeJSON(w, http.StatusAccepted, TaskStatus{ID: id, Status: "running"})
}

// taskState works a task's status out of its id.
func taskState(id string, now time.Time) (TaskStatus, bool) {
	parts := strings.Split(id, "_")
	if len(parts) != 4 || parts[0] != "simtask" {
		return TaskStatus{}, false
	}
	start, err1 := strconv.ParseInt(parts[1], 10, 64)
	dur, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || (parts[3] != "succeeded" && parts[3] != "failed") {
		return TaskStatus{}, false
	}
	st := TaskStatus{ID: id, Status: "running"}
	if now.UnixMilli() >= start+dur {
		st.Status = parts[3]
		if st.Status == "succeeded" {
			st.Result = "https://upstream.invalid/results/" + id + ".mp4"
		} else {
			st.Error = "simulated task failure"
		}
	}
	return st, true
}

func (s *Simulator) getTask(w http.ResponseWriter, r *http.Request) {
	st, ok := taskState(r.PathValue("id"), time.Now())
	if !ok {
		simError(w, http.StatusNotFound, "no such task")
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Simulator) cancelTask(w http.ResponseWriter, r *http.Request) {
	st, ok := taskState(r.PathValue("id"), time.Now())
	if !ok {
		simError(w, http.StatusNotFound, "no such task")
		return
	}
	if st.Status == "running" {
		st.Status = "cancelled"
	}
	writeJSON(w, http.StatusOK, st)
}
