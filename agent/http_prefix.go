package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/drover-sh/drover/structs"
)

// fullIDLength is the length of a UUID: an ID this long is not a prefix.
const fullIDLength = 36

// maxListedMatches bounds the IDs an ambiguous-prefix error lists.
const maxListedMatches = 10

// getter reads one object by exact ID into the handler's reply and says
// whether it exists.
type getter func(id string, q structs.QueryOptions) (bool, error)

// lister returns the IDs that start with q.Prefix.
type lister func(q structs.QueryOptions) ([]string, error)

// getByIDOrPrefix is how every single-object GET finds its object: the
// exact ID first, else the one object whose ID starts with id. Several
// matches are a 400 that lists them, none a 404. A blocking query (index
// given) must name the full ID: it waits on that one object.
func getByIDOrPrefix(kind, id string, q structs.QueryOptions, get getter, list lister) error {
	found, err := get(id, q)
	if err != nil || found {
		return err
	}
	if q.MinQueryIndex > 0 || len(id) >= fullIDLength {
		return notFound(kind, id)
	}
	lq := q
	lq.Prefix = id
	ids, err := list(lq)
	if err != nil {
		return err
	}
	switch len(ids) {
	case 0:
		return notFound(kind, id)
	case 1:
		found, err := get(ids[0], q)
		if err != nil {
			return err
		}
		if !found { // removed between the two reads
			return notFound(kind, id)
		}
		return nil
	}
	return ambiguousPrefix(kind, id, ids)
}

func notFound(kind, id string) error {
	return structs.NewError(structs.ErrNotFound, "no %s with ID or ID prefix %q", kind, id)
}

// ambiguousPrefix is the coded error of a prefix that matches several
// objects; the field is "id" and the message lists them.
func ambiguousPrefix(kind, prefix string, ids []string) error {
	shown := ids[:min(len(ids), maxListedMatches)]
	list := strings.Join(shown, ", ")
	if n := len(ids) - len(shown); n > 0 {
		list += fmt.Sprintf(" and %d more", n)
	}
	msg := fmt.Sprintf("prefix %q matches %d %ss: %s", prefix, len(ids), kind, list)
	e := structs.NewError(structs.ErrInvalid, "%s", msg)
	e.Problems = []*structs.FieldError{{Field: "id", Message: msg}}
	return e
}

// invalidBody is a coded 400 about one field of a JSON request body.
func invalidBody(field, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	e := structs.NewError(structs.ErrInvalid, "request body: %s: %s", field, msg)
	e.Problems = []*structs.FieldError{{Field: field, Message: msg}}
	return e
}

// decodeJSONBody decodes a JSON object strictly (unknown fields are
// refused), naming the field of any problem.
func decodeJSONBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return structs.NewError(structs.ErrInvalid, "request body: a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if dec.More() {
			return structs.NewError(structs.ErrInvalid, "request body: unexpected data after the JSON object")
		}
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return invalidBody(typeErr.Field, "must be a %s, got a JSON %s", typeErr.Type.Kind(), typeErr.Value)
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return structs.NewError(structs.ErrInvalid, "request body is not valid JSON: %v", err)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		field := strings.Trim(name, `"`)
		return invalidBody(field, "unknown field")
	}
	return structs.NewError(structs.ErrInvalid, "request body: %v", err)
}
