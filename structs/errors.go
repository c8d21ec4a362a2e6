package structs

import (
	"errors"
	"fmt"
	"strings"
)

// ErrorCode classifies an error for callers: the HTTP layer maps each code
// to one status in exactly one place.
type ErrorCode string

const (
	ErrInvalid     ErrorCode = "invalid"     // 400: the caller's input is wrong
	ErrNotFound    ErrorCode = "not_found"   // 404
	ErrConflict    ErrorCode = "conflict"    // 409: e.g. a check-and-set index no longer matches
	ErrTooLarge    ErrorCode = "too_large"   // 413
	ErrUnsupported ErrorCode = "unsupported" // 415: unknown content type
	ErrNoLeader    ErrorCode = "no_leader"   // 503: the cluster has no leader right now
	ErrUnavailable ErrorCode = "unavailable" // 503: a server could not be reached
	ErrPermission  ErrorCode = "permission"  // 403
	ErrInternal    ErrorCode = "internal"    // 500
)

// Error is the coded error that crosses the RPC and HTTP boundaries.
type Error struct {
	Code     ErrorCode     `json:"code"`
	Message  string        `json:"error"`
	Problems []*FieldError `json:"errors,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// NewError returns a coded error with a formatted message.
func NewError(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of err, or ErrInternal for uncoded errors.
func CodeOf(err error) ErrorCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	var v *ValidationError
	if errors.As(err, &v) {
		return ErrInvalid
	}
	return ErrInternal
}

// IsNotFound reports whether err is a coded not-found error.
func IsNotFound(err error) bool { return CodeOf(err) == ErrNotFound }

// FieldError is one problem with one field. Field is a path such as
// "groups[0].tasks[1].image"; Line and Column point into the job file when
// the object came from one (zero otherwise).
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:%d: ", e.Line, e.Column)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// ValidationError holds every problem found in an object, in document order.
type ValidationError struct {
	Errors []*FieldError
}

func (v *ValidationError) Error() string {
	switch len(v.Errors) {
	case 0:
		return "invalid"
	case 1:
		return v.Errors[0].Error()
	}
	parts := make([]string, len(v.Errors))
	for i, e := range v.Errors {
		parts[i] = e.Error()
	}
	return fmt.Sprintf("%d problems: %s", len(v.Errors), strings.Join(parts, "; "))
}

// Add records a problem with field.
func (v *ValidationError) Add(field, format string, args ...any) {
	v.Errors = append(v.Errors, &FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// ErrOrNil returns v when it holds problems, nil otherwise.
func (v *ValidationError) ErrOrNil() error {
	if v == nil || len(v.Errors) == 0 {
		return nil
	}
	return v
}

// AsAPIError turns any error into a coded *Error, keeping field problems.
func AsAPIError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var v *ValidationError
	if errors.As(err, &v) {
		return &Error{Code: ErrInvalid, Message: v.Error(), Problems: v.Errors}
	}
	return &Error{Code: ErrInternal, Message: err.Error()}
}
