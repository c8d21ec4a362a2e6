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
	"sync"

	"gopkg.in/yaml.v3"
)

// ParseJob decodes a job file (YAML, or JSON, which YAML reads too), fills
// defaults (Canonicalize) and validates it. On any problem it returns a
// *ValidationError whose FieldErrors carry the field path and the 1-based
// line and column in data, in document order; every problem is reported,
// not just the first.
//
// The decoder is strict: unknown fields, duplicate keys, values of the wrong
// type and a second YAML document are errors. The fields the servers set
// (status, version, indexes...) are accepted, so that a job read back from
// the API can be submitted again, and their values are dropped.
func ParseJob(data []byte) (*Job, error) {
	root, errs := parseDocument(data)
	if root == nil {
		return nil, &ValidationError{Errors: errs}
	}
	if root.Kind != yaml.MappingNode {
		errs = append(errs, &FieldError{Message: "a job file is a mapping of fields, got " + describeNode(root), Line: root.Line, Column: root.Column})
		return nil, &ValidationError{Errors: errs}
	}

	d := &fileDecoder{
		errs:    errs,
		pos:     map[string]filePos{"": {root.Line, root.Column}},
		given:   map[string]struct{}{},
		bad:     map[string]bool{},
		shadows: map[string]bool{},
	}
	job := &Job{}
	d.decode(root, reflect.ValueOf(job).Elem(), "")
	job.clearServerFields()
	job.Stop = false
	job.canonicalize(d.given)

	var verr *ValidationError
	if err := job.Validate(); !d.halted && errors.As(err, &verr) {
		for _, fe := range verr.Errors {
			if d.explained(fe.Field) {
				continue
			}
			p := d.locate(fe.Field)
			fe.Line, fe.Column = p.line, p.col
			d.errs = append(d.errs, fe)
		}
	}
	if len(d.errs) == 0 {
		return job, nil
	}
	sort.SliceStable(d.errs, func(a, b int) bool {
		x, y := d.errs[a], d.errs[b]
		if x.Line != y.Line {
			return x.Line < y.Line
		}
		return x.Column < y.Column
	})
	if n := len(d.errs); n > maxProblems {
		// Past this many, the file is not a job with mistakes; the rest
		// would only make the answer large.
		last := d.errs[maxProblems-1]
		d.errs = append(d.errs[:maxProblems], &FieldError{
			Message: fmt.Sprintf("and %d more problems", n-maxProblems), Line: last.Line, Column: last.Column,
		})
	}
	return nil, &ValidationError{Errors: d.errs}
}

// maxProblems is how many problems ParseJob reports at most.
const maxProblems = 200

// parseDocument returns the root node of the file's one document, and the
// problems found at the document level. A nil root means nothing more can
// be read.
func parseDocument(data []byte) (*yaml.Node, []*FieldError) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, []*FieldError{{Message: "empty job file", Line: 1, Column: 1}}
		}
		return nil, []*FieldError{syntaxError(err, data)}
	}
	if len(doc.Content) == 0 || isEmptyDocument(doc.Content[0]) {
		return nil, []*FieldError{{Message: "empty job file", Line: 1, Column: 1}}
	}
	root := doc.Content[0]

	var errs []*FieldError
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == io.EOF:
	case err != nil:
		errs = append(errs, syntaxError(err, data))
	case len(extra.Content) > 0 && isEmptyDocument(extra.Content[0]):
		// A trailing "---" with nothing after it holds no second job.
	default:
		line, col := extra.Line, extra.Column
		if len(extra.Content) > 0 {
			line, col = extra.Content[0].Line, extra.Content[0].Column
		}
		errs = append(errs, &FieldError{
			Message: "a job file holds one YAML document; found a second one (submit each job on its own)",
			Line:    max(line, 1), Column: max(col, 1),
		})
	}
	return root, errs
}

func isEmptyDocument(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" && n.Value == ""
}

// parserProblems are the messages of yaml.v3's parser (as opposed to its
// scanner). The parser reports their line counting from 0, the scanner from
// 1; neither reports a column.
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %YAML directive":        true,
	"found duplicate %TAG directive":         true,
	"found incompatible YAML document":       true,
}

// syntaxError turns a parser error ("yaml: line 3: did not find...") into
// a positioned problem.
func syntaxError(err error, data []byte) *FieldError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line, col := 1, 1
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ":"); ok {
			if n, perr := strconv.Atoi(num); perr == nil && n > 0 {
				line, msg = n, strings.TrimSpace(text)
				if parserProblems[msg] {
					line++
				}
			}
		}
	}
	// An unknown alias is reported without a position; find its first use.
	if name, ok := strings.CutPrefix(msg, "unknown anchor '"); ok {
		name, _, _ = strings.Cut(name, "'")
		if i := bytes.Index(data, []byte("*"+name)); i >= 0 {
			line = bytes.Count(data[:i], []byte("\n")) + 1
			col = i - bytes.LastIndexByte(data[:i], '\n')
		}
	}
	return &FieldError{Message: "syntax error: " + msg, Line: line, Column: col}
}

// maxDecodeSteps bounds the work one file may cause. Aliases let a small
// file expand exponentially ("billion laughs"); no real job comes near this.
const maxDecodeSteps = 250_000

// maxMergeDepth bounds chains of "<<" merge keys, which may also loop.
const maxMergeDepth = 16

type filePos struct{ line, col int }

// fileDecoder walks a YAML node tree into Go values by their json tags. It
// remembers where every field path was written, so that Validate's paths can
// be turned into positions, and which fields the file gave a value, so that
// defaults fill only what the file left out.
type fileDecoder struct {
	errs    []*FieldError
	pos     map[string]filePos
	given   map[string]struct{}
	bad     map[string]bool // paths with a decode error
	shadows map[string]bool // fields a misspelt key probably meant
	steps   int
	halted  bool
}

func (d *fileDecoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &FieldError{Field: path, Message: fmt.Sprintf(format, args...), Line: n.Line, Column: n.Column})
	d.bad[path] = true
}

// explained reports whether a decode error already covers a validation
// problem at path: an error at the path or above it, or a misspelt key for
// it ("imagee" is reported; "image: required" would only repeat it).
func (d *fileDecoder) explained(path string) bool {
	if d.shadows[path] {
		return true
	}
	for p := path; p != ""; p = parentPath(p) {
		if d.bad[p] {
			return true
		}
	}
	return false
}

// locate returns where path was written or, for a field the file left out,
// where the nearest enclosing object is.
func (d *fileDecoder) locate(path string) filePos {
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

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func indexPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// resolve follows an alias to its anchor and counts the step against the
// budget; it returns nil once the budget is spent.
func (d *fileDecoder) resolve(n *yaml.Node) *yaml.Node {
	if d.halted {
		return nil
	}
	d.steps++
	if d.steps > maxDecodeSteps {
		d.halted = true
		d.fail(n, "", "the file expands to more than %d values through aliases; decoding stopped", maxDecodeSteps)
		return nil
	}
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

var (
	durationType = reflect.TypeFor[Duration]()
	jobType      = reflect.TypeFor[Job]()
)

// serverFields are the Job fields the servers set. A job file may carry
// them (it may be a job read back from the API); their values are dropped.
var serverFields = map[string]bool{
	"stop": true, "status": true, "status_description": true, "version": true, "stable": true,
	"submit_time": true, "create_index": true, "modify_index": true, "job_modify_index": true,
}

// decode reads n into v. A null leaves v as it is.
func (d *fileDecoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n = d.resolve(n); n == nil || isNullNode(n) {
		return
	}
	t := v.Type()
	switch {
	case t == durationType:
		d.decodeDuration(n, v, path)
		return
	case t.Kind() == reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		d.decode(n, v.Elem(), path)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.String:
		// Any scalar reads as its text: `port: 8080` or `value: 1.10` mean
		// what they look like, not a number's canonical form.
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a string, got %s", describeNode(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int, reflect.Int64, reflect.Uint64:
		d.decodeInt(n, v, path)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.fail(n, path, "expected true or false, got %s", describeNode(n))
			return
		}
		v.SetBool(b)
	default:
		d.fail(n, path, "cannot decode a value of Go type %s", t)
	}
}

// yamlPair is one entry of a mapping: its key's text, the key node (for
// positions) and the value node.
type yamlPair struct {
	name       string
	key, value *yaml.Node
}

// pairs returns a mapping's key/value pairs with "<<" merge keys expanded
// (keys written in the mapping win over merged ones, as YAML says), and
// reports duplicate and non-scalar keys.
func (d *fileDecoder) pairs(n *yaml.Node, path string, depth int) []yamlPair {
	out := make([]yamlPair, 0, len(n.Content)/2)
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	var merged []yamlPair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := d.resolve(n.Content[i]), n.Content[i+1]
		if k == nil {
			return out
		}
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.merge(v, joinPath(path, "<<"), depth)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "expected a field name, got %s", describeNode(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.fail(n.Content[i], joinPath(path, k.Value), "duplicate key %q (first at line %d)", k.Value, first.Line)
			continue
		}
		seen[k.Value] = n.Content[i]
		out = append(out, yamlPair{k.Value, n.Content[i], v})
	}
	for _, p := range merged {
		if _, dup := seen[p.name]; !dup {
			seen[p.name] = p.key
			out = append(out, p)
		}
	}
	return out
}

// merge returns the pairs a "<<" value brings: one mapping, or a list of
// them where earlier ones win.
func (d *fileDecoder) merge(v *yaml.Node, path string, depth int) []yamlPair {
	at := v
	if v = d.resolve(v); v == nil {
		return nil
	}
	if depth >= maxMergeDepth {
		d.fail(at, path, "merge keys (<<) nested more than %d deep", maxMergeDepth)
		return nil
	}
	switch v.Kind {
	case yaml.MappingNode:
		return d.pairs(v, path, depth+1)
	case yaml.SequenceNode:
		var out []yamlPair
		seen := map[string]bool{}
		for _, item := range v.Content {
			if m := d.resolve(item); m == nil || m.Kind != yaml.MappingNode {
				d.fail(item, path, "<< merges mappings, got %s", describeResolved(m))
				continue
			}
			for _, p := range d.merge(item, path, depth+1) {
				if !seen[p.name] {
					seen[p.name] = true
					out = append(out, p)
				}
			}
		}
		return out
	}
	d.fail(at, path, "<< merges mappings, got %s", describeNode(v))
	return nil
}

func (d *fileDecoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", describeNode(n))
		return
	}
	info := jsonFieldsOf(v.Type())
	isJob := v.Type() == jobType
	for _, p := range d.pairs(n, path, 0) {
		fpath := joinPath(path, p.name)
		i, known := info.indexPath[p.name]
		if isJob && serverFields[p.name] {
			continue
		}
		if !known {
			msg := fmt.Sprintf("unknown field %q", p.name)
			if s := info.suggest(p.name, isJob); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
				d.shadows[joinPath(path, s)] = true
			}
			d.fail(p.key, fpath, "%s", msg)
			continue
		}
		if isNullNode(p.value) {
			// A field written without a value is as good as absent: it
			// takes its default, and a problem with it points at its key.
			d.pos[fpath] = filePos{p.key.Line, p.key.Column}
			continue
		}
		d.pos[fpath] = filePos{p.value.Line, p.value.Column}
		d.given[fpath] = struct{}{}
		d.decode(p.value, v.Field(i), fpath)
	}
}

func (d *fileDecoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "expected a list, got %s", describeNode(n))
		return
	}
	if len(n.Content) == 0 {
		// An empty list is the same as none; keeping nil makes a job
		// re-read from its own JSON (where empty lists are omitted) equal.
		return
	}
	s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
	for i, item := range n.Content {
		ipath := indexPath(path, i)
		d.pos[ipath] = filePos{item.Line, item.Column}
		if isNullNode(item) {
			// Keep the slot, so later elements keep their index in paths.
			d.fail(item, ipath, "expected %s, got null", expectedKind(t.Elem()))
			continue
		}
		d.decode(item, s.Index(i), ipath)
	}
	v.Set(s)
}

// decodeMap reads a map[string]string. Scalar values of any kind are kept
// as written (env: {PORT: 8080} is fine); nested mappings and lists are not.
func (d *fileDecoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if t := v.Type(); t.Key().Kind() != reflect.String || t.Elem().Kind() != reflect.String {
		d.fail(n, path, "cannot decode a value of Go type %s", t)
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping of strings, got %s", describeNode(n))
		return
	}
	pairs := d.pairs(n, path, 0)
	if len(pairs) == 0 {
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(pairs))
	for _, p := range pairs {
		val := d.resolve(p.value)
		if val == nil {
			return
		}
		kpath := joinPath(path, p.name)
		d.pos[kpath] = filePos{p.key.Line, p.key.Column}
		if val.Kind != yaml.ScalarNode {
			d.fail(p.value, kpath, "expected a string, got %s", describeNode(val))
			continue
		}
		s := val.Value
		if isNullNode(val) {
			s = ""
		}
		m.SetMapIndex(reflect.ValueOf(p.name).Convert(v.Type().Key()), reflect.ValueOf(s).Convert(v.Type().Elem()))
	}
	v.Set(m)
}

func (d *fileDecoder) decodeInt(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		d.fail(n, path, "expected an integer, got %s", describeNode(n))
		return
	}
	if v.Kind() == reflect.Uint64 {
		var u uint64
		if err := n.Decode(&u); err != nil {
			d.fail(n, path, "expected a non-negative integer, got %s", n.Value)
			return
		}
		v.SetUint(u)
		return
	}
	var i int64
	if err := n.Decode(&i); err != nil {
		d.fail(n, path, "integer %s is out of range", n.Value)
		return
	}
	// No count, port, weight or size in a job needs more than 32 bits; a
	// larger value is a typo, and would not survive a 32-bit client.
	if v.Kind() == reflect.Int && (i < math.MinInt32 || i > math.MaxInt32) {
		d.fail(n, path, "integer %s is out of range (%d to %d)", n.Value, math.MinInt32, math.MaxInt32)
		return
	}
	v.SetInt(i)
}

func (d *fileDecoder) decodeDuration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "expected a duration like \"5s\", got %s", describeNode(n))
		return
	}
	if n.ShortTag() == "!!int" {
		// A bare number has no unit; only zero means the same in all of them.
		var i int64
		if n.Decode(&i) != nil || i != 0 {
			d.fail(n, path, "expected a duration like \"5s\", got %s (a number needs a unit)", n.Value)
		}
		v.SetInt(0)
		return
	}
	dur, err := ParseDuration(n.Value)
	if err != nil {
		d.fail(n, path, "%v", err)
		return
	}
	v.SetInt(int64(dur))
}

func isNullNode(n *yaml.Node) bool {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describeNode names a value in messages: quoted strings, bare numbers and
// booleans, "a mapping", "a list".
func describeNode(n *yaml.Node) string {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return describeResolved(n)
}

func describeResolved(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!null":
		return "null"
	case "!!str":
		s := n.Value
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		return strconv.Quote(s)
	}
	return n.Value
}

// expectedKind names what a Go type reads from a file, for messages.
func expectedKind(t reflect.Type) string {
	if t == durationType {
		return "a duration like \"5s\""
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Struct:
		return "a mapping"
	case reflect.Slice:
		return "a list"
	case reflect.Map:
		return "a mapping of strings"
	case reflect.Int, reflect.Int64, reflect.Uint64:
		return "an integer"
	case reflect.Bool:
		return "true or false"
	}
	return "a string"
}

// jsonFields is a struct type's fields by their json names.
type jsonFields struct {
	names     []string
	indexPath map[string]int
}

var jsonFieldsCache sync.Map // reflect.Type -> *jsonFields

func jsonFieldsOf(t reflect.Type) *jsonFields {
	if info, ok := jsonFieldsCache.Load(t); ok {
		return info.(*jsonFields)
	}
	info := &jsonFields{indexPath: make(map[string]int, t.NumField())}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		info.names = append(info.names, name)
		info.indexPath[name] = i
	}
	jsonFieldsCache.Store(t, info)
	return info
}

// suggest returns the field an unknown key was probably meant to be: the
// same name in another case or spelling (killTimeout, Kill-Timeout), or one
// a typo or two away. It returns "" when nothing is close.
func (s *jsonFields) suggest(name string, isJob bool) string {
	norm := func(x string) string {
		return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(x))
	}
	best, bestDist := "", 3
	for _, f := range s.names {
		if isJob && serverFields[f] {
			continue
		}
		if norm(f) == norm(name) {
			return f
		}
		if dist := editDistance(name, f); dist < bestDist && dist*3 <= len(name)+1 {
			best, bestDist = f, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
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
