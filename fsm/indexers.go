package fsm

import (
	"encoding/binary"
	"fmt"

	"github.com/hashicorp/go-memdb"

	"github.com/drover-sh/drover/structs"
)

// memdb's field indexers find the field by name through reflection on
// every write of every index; on the allocation and evaluation tables
// that was a tenth of an apply's allocations. These read the field
// through a typed function and build exactly the keys memdb's own would
// (TestTypedIndexersMatchMemdb), so lookups by argument are memdb's.

// stringIndex is memdb.StringFieldIndex with a typed field reader.
type stringIndex struct {
	memdb.StringFieldIndex
	get func(obj any) string
}

func (s *stringIndex) FromObject(obj any) (bool, []byte, error) {
	v := s.get(obj)
	if v == "" {
		return false, nil, nil
	}
	key := make([]byte, 0, len(v)+1)
	key = append(key, v...)
	return true, append(key, 0), nil
}

// FromArgs is memdb.StringFieldIndex's with one allocation instead of two
// (a concatenation, then its conversion): every lookup by ID pays it.
func (s *stringIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("must provide only a single argument")
	}
	arg, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("argument must be a string: %#v", args[0])
	}
	key := make([]byte, len(arg)+1)
	copy(key, arg)
	return key, nil
}

// uint64Index is memdb.UintFieldIndex over a uint64 field with a typed
// field reader.
type uint64Index struct {
	memdb.UintFieldIndex
	get func(obj any) uint64
}

func (u *uint64Index) FromObject(obj any) (bool, []byte, error) {
	key := make([]byte, 8)
	binary.BigEndian.PutUint64(key, u.get(obj))
	return true, key, nil
}

// stringField indexes field of T, read by get.
func stringField[T any](field string, get func(T) string) *stringIndex {
	return &stringIndex{StringFieldIndex: memdb.StringFieldIndex{Field: field}, get: func(obj any) string { return get(obj.(T)) }}
}

func uint64Field[T any](field string, get func(T) uint64) *uint64Index {
	return &uint64Index{UintFieldIndex: memdb.UintFieldIndex{Field: field}, get: func(obj any) uint64 { return get(obj.(T)) }}
}

// nsKey keys by namespace then a field; a missing value is an error, since
// an object without a namespace would be invisible to namespaced reads.
func nsKey[T any](ns func(T) string, field string, get func(T) string) *memdb.CompoundIndex {
	return &memdb.CompoundIndex{Indexes: []memdb.Indexer{stringField("Namespace", ns), stringField(field, get)}}
}

// The typed readers of the indexed fields.
var (
	allocNamespace = func(a *structs.Allocation) string { return a.Namespace }
	evalNamespace  = func(e *structs.Evaluation) string { return e.Namespace }
	jobNamespace   = func(j *structs.Job) string { return j.Namespace }
)

// stoppedIndex keys terminal allocations by ModifyIndex and leaves live
// ones out. The leader's watcher looks for allocations that stopped since
// it last looked (capacity that appeared); indexing every write by
// ModifyIndex made every placement and every client report (most writes,
// and they leave allocations live) pay a delete and an insert in a tree
// as big as the table.
type stoppedIndex struct {
	memdb.UintFieldIndex
}

func (s *stoppedIndex) FromObject(obj any) (bool, []byte, error) {
	a := obj.(*structs.Allocation)
	if !a.TerminalStatus() {
		return false, nil, nil
	}
	key := make([]byte, 8)
	binary.BigEndian.PutUint64(key, a.ModifyIndex)
	return true, key, nil
}
