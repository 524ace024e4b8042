package models

// LooksLikeTaskID reports whether s has the shape of a task id, as
// POST /v1/tasks makes them: "task_" and a ULID.
func LooksLikeTaskID(s string) bool { return looksLikeID("task_", s) }
