package models

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Error codes. Handlers map each to one HTTP status in one table.
const (
	EINVALID      = "invalid"      // user input failed validation
	ENOTFOUND     = "not_found"    // no such thing, or not this account's
	ECONFLICT     = "conflict"     // duplicate or a state that forbids the change
	EUNAUTHORIZED = "unauthorized" // bad credentials or no session
	EFORBIDDEN    = "forbidden"    // the member's role does not allow it
	EUNAVAILABLE  = "unavailable"  // busy for now: nothing was done, retry shortly
	EINTERNAL     = "internal"
)

// Error is an error the product explains to its user. Fields holds the
// message to show beside each form field that caused it.
type Error struct {
	Code    string
	Message string
	Fields  map[string]string
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	names := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(e.Message)
	for _, k := range names {
		fmt.Fprintf(&b, "; %s: %s", k, e.Fields[k])
	}
	return b.String()
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrNotFound is returned when a record does not exist or belongs to another account.
var ErrNotFound = &Error{Code: ENOTFOUND, Message: "Not found."}

// ErrorCode returns the code of err, or EINTERNAL for errors the product did not make.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// FieldErrors collects per-field validation messages.
type FieldErrors map[string]string

// Add records msg for field unless the field already has a message.
func (f FieldErrors) Add(field, msg string) {
	if _, ok := f[field]; !ok {
		f[field] = msg
	}
}

// Err returns an EINVALID *Error when any field failed, or nil.
func (f FieldErrors) Err() error {
	if len(f) == 0 {
		return nil
	}
	return &Error{Code: EINVALID, Message: "Please correct the highlighted fields.", Fields: f}
}
