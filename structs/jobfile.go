package structs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ParseJob decodes a job file (YAML, or JSON, which YAML reads too), fills
// defaults and validates it. Every problem comes back in one
// *ValidationError, each with its field path and the file's line and
// column.
func ParseJob(data []byte) (*Job, error) {
	d := &decoder{pos: make(map[string]position)}
	job := &Job{}
	root, err := parseDocument(data)
	if err != nil {
		return nil, err
	}
	d.decode(root, reflect.ValueOf(job).Elem(), "")
	job.Canonicalize()
	var verr *ValidationError
	if err := job.Validate(); err != nil && !errors.As(err, &verr) {
		return nil, err
	}
	if verr != nil {
		for _, fe := range verr.Errors {
			if d.failed(fe.Field) {
				continue // the decode error already says what is wrong here
			}
			p := d.locate(fe.Field)
			fe.Line, fe.Column = p.line, p.col
			d.errs = append(d.errs, fe)
		}
	}
	if len(d.errs) == 0 {
		return job, nil
	}
	sort.SliceStable(d.errs, func(i, j int) bool {
		a, b := d.errs[i], d.errs[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return nil, &ValidationError{Errors: d.errs}
}

// parseDocument returns the one document's root node.
func parseDocument(data []byte) (*yaml.Node, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &ValidationError{Errors: []*FieldError{{Message: "empty job file", Line: 1, Column: 1}}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, &ValidationError{Errors: []*FieldError{syntaxError(err)}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		line := extra.Line
		if line == 0 {
			line = 1
		}
		return nil, &ValidationError{Errors: []*FieldError{{Message: "a job file holds one document; found a second one", Line: line, Column: 1}}}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, &ValidationError{Errors: []*FieldError{{Message: "empty job file", Line: 1, Column: 1}}}
	}
	return doc.Content[0], nil
}

// syntaxError turns a YAML parser error ("yaml: line 3: ...") into a
// positioned problem.
func syntaxError(err error) *FieldError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 1
	if strings.HasPrefix(msg, "line ") {
		rest := msg[len("line "):]
		if i := strings.Index(rest, ":"); i > 0 {
			if n, perr := strconv.Atoi(rest[:i]); perr == nil {
				line = n
				msg = strings.TrimSpace(rest[i+1:])
			}
		}
	}
	return &FieldError{Message: "syntax error: " + msg, Line: line, Column: 1}
}

type position struct{ line, col int }

// decoder walks a YAML node tree into Go values by their json tags,
// remembering where every field path was written.
type decoder struct {
	errs []*FieldError
	pos  map[string]position
	bad  []string
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &FieldError{Field: path, Message: fmt.Sprintf(format, args...), Line: n.Line, Column: n.Column})
	d.bad = append(d.bad, path)
}

// failed reports whether path, or a parent or child of it, had a decode error.
func (d *decoder) failed(path string) bool {
	for _, b := range d.bad {
		if b == path || strings.HasPrefix(path, b+".") || strings.HasPrefix(path, b+"[") ||
			strings.HasPrefix(b, path+".") || strings.HasPrefix(b, path+"[") {
			return true
		}
	}
	return false
}

// locate returns the position of path, or of its nearest written parent
// (a missing field points at the object that lacks it).
func (d *decoder) locate(path string) position {
	for p := path; p != ""; p = parentPath(p) {
		if pos, ok := d.pos[p]; ok {
			return pos
		}
	}
	return d.pos[""]
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

var durationType = reflect.TypeOf(Duration(0))

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if _, ok := d.pos[path]; !ok {
		d.pos[path] = position{n.Line, n.Column}
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // null leaves the zero value
	}
	switch {
	case v.Type() == durationType:
		d.decodeDuration(n, v, path)
		return
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.Tag == "!!map" || n.Tag == "!!seq" {
			d.fail(n, path, "expected a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int, reflect.Int64, reflect.Uint64:
		d.decodeInt(n, v, path)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			d.fail(n, path, "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(n.Value == "true" || n.Value == "True" || n.Value == "TRUE")
	default:
		d.fail(n, path, "cannot decode into %s", v.Type())
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected an object, got %s", describe(n))
		return
	}
	fields := structFields(v.Type())
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		name := k.Value
		fpath := join(path, name)
		if seen[name] {
			d.fail(k, fpath, "duplicate key %q", name)
			continue
		}
		seen[name] = true
		idx, ok := fields[name]
		if !ok {
			msg := fmt.Sprintf("unknown field %q", name)
			if s := suggest(name, fields); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
				// A misspelt field is not also "required": one problem, one message.
				d.bad = append(d.bad, join(path, s))
			}
			d.fail(k, fpath, "%s", msg)
			continue
		}
		d.pos[fpath] = position{val.Line, val.Column}
		fv := v.Field(idx)
		// Groups default to count 1 only when the key is absent.
		if fv.Kind() == reflect.Slice && fv.Type().Elem() == reflect.TypeOf((*TaskGroup)(nil)) {
			d.decodeGroups(val, fv, fpath)
			continue
		}
		d.decode(val, fv, fpath)
	}
}

// decodeGroups decodes the groups list, giving each group count 1 before
// its fields are read, so an explicit `count: 0` stays 0.
func (d *decoder) decodeGroups(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "expected a list, got %s", describe(n))
		return
	}
	groups := make([]*TaskGroup, len(n.Content))
	for i, item := range n.Content {
		groups[i] = &TaskGroup{Count: 1}
		if isNull(item) {
			d.fail(item, fmt.Sprintf("%s[%d]", path, i), "must not be null")
			continue
		}
		d.decode(item, reflect.ValueOf(groups[i]).Elem(), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(reflect.ValueOf(groups))
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "expected a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		if v.Type().Elem().Kind() == reflect.Pointer && isNull(item) {
			d.fail(item, ipath, "must not be null")
			continue
		}
		d.decode(item, s.Index(i), ipath)
	}
	v.Set(s)
}

// decodeMap reads map[string]string: scalar values of any kind are kept
// as written (env: {PORT: 8080} is fine), nested objects are not.
func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected an object of strings, got %s", describe(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kpath := join(path, k.Value)
		d.pos[kpath] = position{k.Line, k.Column}
		if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
			d.fail(k, kpath, "duplicate key %q", k.Value)
			continue
		}
		if val.Kind != yaml.ScalarNode {
			d.fail(val, kpath, "expected a string value, got %s", describe(val))
			continue
		}
		s := val.Value
		if val.Tag == "!!null" {
			s = ""
		}
		m.SetMapIndex(reflect.ValueOf(k.Value), reflect.ValueOf(s))
	}
	v.Set(m)
}

func (d *decoder) decodeInt(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
		d.fail(n, path, "expected an integer, got %s", describe(n))
		return
	}
	var i int64
	if n.Tag == "!!int" {
		parsed, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil {
			d.fail(n, path, "integer %s is out of range", n.Value)
			return
		}
		i = parsed
	} else {
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
			d.fail(n, path, "expected an integer, got %s", n.Value)
			return
		}
		i = int64(f)
	}
	switch v.Kind() {
	case reflect.Int:
		if i > math.MaxInt32 || i < math.MinInt32 {
			d.fail(n, path, "integer %s is out of range", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Int64:
		v.SetInt(i)
	case reflect.Uint64:
		if i < 0 {
			d.fail(n, path, "must not be negative, got %s", n.Value)
			return
		}
		v.SetUint(uint64(i))
	}
}

func (d *decoder) decodeDuration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "expected a duration like 5s, got %s", describe(n))
		return
	}
	if n.Tag == "!!int" {
		// A bare number is nanoseconds, as the API writes them in JSON ints;
		// only 0 is unambiguous enough to accept from people.
		i, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil {
			d.fail(n, path, "invalid duration %s", n.Value)
			return
		}
		v.SetInt(i)
		return
	}
	dur, err := ParseDuration(n.Value)
	if err != nil {
		d.fail(n, path, "%v", err)
		return
	}
	v.SetInt(int64(dur))
}

func isNull(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "an object"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.Tag {
	case "!!str":
		return strconv.Quote(n.Value)
	case "!!null":
		return "null"
	}
	return n.Value
}

// structFields maps json names to field indexes.
func structFields(t reflect.Type) map[string]int {
	out := make(map[string]int, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = i
	}
	return out
}

// suggest returns the known field closest to name, if close enough to be
// a typo.
func suggest(name string, fields map[string]int) string {
	best, bestDist := "", 3
	for f := range fields {
		if dd := editDistance(name, f); dd < bestDist || (dd == bestDist && f < best && best != "") {
			if dd < bestDist {
				best, bestDist = f, dd
			}
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
