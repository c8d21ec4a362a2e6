package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/drover-sh/drover/structs"
)

// Error is a non-2xx answer of the agent, decoded from its error body.
type Error struct {
	StatusCode int
	Code       structs.ErrorCode
	Message    string
	// Field, Line and Column locate the first problem (job files).
	Field  string
	Line   int
	Column int
	// Problems lists every problem, in document order.
	Problems []*structs.FieldError
}

func (e *Error) Error() string {
	if e.Message != "" {
		return e.Message
	}
	if e.Code != "" {
		return fmt.Sprintf("%s (HTTP %d)", e.Code, e.StatusCode)
	}
	return fmt.Sprintf("unexpected response: HTTP %d %s", e.StatusCode, http.StatusText(e.StatusCode))
}

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error  string                `json:"error"`
	Code   structs.ErrorCode     `json:"code"`
	Field  string                `json:"field"`
	Line   int                   `json:"line"`
	Column int                   `json:"column"`
	Errors []*structs.FieldError `json:"errors"`
}

// maxErrorBody bounds what is read of an error answer: a proxy's HTML page
// must not be read whole.
const maxErrorBody = 1 << 20

func decodeError(resp *http.Response) error {
	e := &Error{StatusCode: resp.StatusCode}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		e.Message = fmt.Sprintf("HTTP %d, reading the error body: %v", resp.StatusCode, err)
		return e
	}
	var body errorBody
	if json.Unmarshal(raw, &body) == nil && (body.Error != "" || body.Code != "") {
		e.Code, e.Message = body.Code, body.Error
		e.Field, e.Line, e.Column = body.Field, body.Line, body.Column
		e.Problems = body.Errors
		if len(e.Problems) == 0 && e.Field != "" {
			// A single problem given only at the top: list it too, so
			// callers have one place to look.
			e.Problems = []*structs.FieldError{{Field: e.Field, Message: e.Message, Line: e.Line, Column: e.Column}}
		}
		return e
	}
	// Not ours (a proxy, or an agent too old to speak JSON errors).
	if text := strings.TrimSpace(string(raw)); text != "" && len(text) < 512 {
		e.Message = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, text)
	}
	return e
}

// CodeOf returns the code of an API error in err's chain, or "".
func CodeOf(err error) structs.ErrorCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// IsNotFound reports whether err is the agent saying "not found".
func IsNotFound(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Code == structs.ErrNotFound || (e.Code == "" && e.StatusCode == http.StatusNotFound)
}
