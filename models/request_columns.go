package models

import "strings"

// requestColumn is a column of the request log and the Request field it
// holds.
type requestColumn struct {
	name   string
	value  func(r *Request) any
	list   bool // the Requests page reads it
	export bool // the CSV export reads it, in this order (see eachRequest)
	insert bool // a new row writes it
	held   bool // the row of a call whose hold was just placed writes it
}

// requestColumns are the request log's columns, in the Request struct's
// order: the one list every query of the log is made from. (The schema is
// the migrations', which never change once released.)
var requestColumns = []requestColumn{
	{"id", func(r *Request) any { return r.ID }, true, true, true, true},
	{"account_id", func(r *Request) any { return r.AccountID }, true, false, true, true},
	{"key_id", func(r *Request) any { return r.KeyID }, true, true, true, true},
	{"method", func(r *Request) any { return r.Method }, true, true, true, true},
	{"path", func(r *Request) any { return r.Path }, true, true, true, true},
	{"model", func(r *Request) any { return r.Model }, true, true, true, true},
	{"status", func(r *Request) any { return r.Status }, true, true, true, true},
	{"error_type", func(r *Request) any { return r.ErrorType }, true, true, true, false},
	{"error_message", func(r *Request) any { return r.ErrorMessage }, true, true, true, false},
	{"error_body", func(r *Request) any { return r.ErrorBody }, false, false, true, false}, // the detail page only
	{"client_ip", func(r *Request) any { return r.ClientIP }, true, true, true, true},
	{"stream", func(r *Request) any { return r.Stream }, true, true, true, true},
	{"latency_ms", func(r *Request) any { return r.LatencyMS }, true, true, true, false},
	{"prompt_tokens", func(r *Request) any { return r.PromptTokens }, true, true, true, false},
	{"completion_tokens", func(r *Request) any { return r.CompletionTokens }, true, true, true, false},
	{"hold_micros", func(r *Request) any { return r.HoldMicros }, true, true, true, true},
	{"refused_hold_micros", func(r *Request) any { return r.RefusedHoldMicros }, true, false, true, false},
	{"charged_micros", func(r *Request) any { return r.ChargedMicros }, true, true, true, false},
	{"billing_outcome", func(r *Request) any { return r.BillingOutcome }, true, true, true, true},
	{"outcome_detail", func(r *Request) any { return r.OutcomeDetail }, true, false, true, false},
	{"ratelimit_limit", func(r *Request) any { return r.RatelimitLimit }, true, false, true, true},
	{"ratelimit_remaining", func(r *Request) any { return r.RatelimitRemaining }, true, false, true, true},
	{"ratelimit_reset", func(r *Request) any { return r.RatelimitReset }, true, false, true, true},
	{"retry_after", func(r *Request) any { return r.RetryAfter }, true, false, true, true},
	{"created_at", func(r *Request) any { return r.CreatedAt }, true, true, true, true},
	{"completed_at", func(r *Request) any { return r.CompletedAt }, true, false, true, false},
	{"hold_status", func(r *Request) any { return r.HoldStatus }, true, false, true, true},
	{"held_at", func(r *Request) any { return r.HeldAt }, true, false, true, true},
	{"hold_expires_at", func(r *Request) any { return r.HoldExpiresAt }, true, false, true, true},
	{"hold_ended_at", func(r *Request) any { return r.HoldEndedAt }, true, false, false, false}, // a new row's hold has not ended
}

// requestColumnNames joins the names of the columns keep selects.
func requestColumnNames(keep func(requestColumn) bool) string {
	var names []string
	for _, c := range requestColumns {
		if keep(c) {
			names = append(names, c.name)
		}
	}
	return strings.Join(names, ", ")
}

var (
	// listColumns are what the Requests page and the API's list read.
	listColumns = requestColumnNames(func(c requestColumn) bool { return c.list })
	// exportColumns are what an export carries: fewer columns is fewer
	// calls into the driver per row.
	exportColumns = requestColumnNames(func(c requestColumn) bool { return c.export })
	// qInsertRequest writes a whole new row.
	qInsertRequest = newInsert("requests", requestColumnNames(func(c requestColumn) bool { return c.insert }))
	// qInsertHeld writes the row of a call whose hold was just placed:
	// nothing has happened to the call yet, so its error, usage, charge
	// and completion keep their defaults.
	qInsertHeld = newInsert("requests", requestColumnNames(func(c requestColumn) bool { return c.held }))
)

// values are r's values of the columns keep selects, in their order.
func (r *Request) values(keep func(requestColumn) bool) []any {
	var v []any
	for _, c := range requestColumns {
		if keep(c) {
			v = append(v, c.value(r))
		}
	}
	return v
}

// newInsert is an INSERT of one row of table with columns.
func newInsert(table, columns string) *query {
	marks := strings.Repeat("?, ", strings.Count(columns, ",")) + "?"
	return newQuery("INSERT INTO " + table + " (" + columns + ") VALUES (" + marks + ")")
}
