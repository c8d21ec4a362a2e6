package fsm

import (
	"fmt"

	"github.com/hashicorp/go-memdb"
)

// Table names. They double as the keys of the index table, which is what
// blocking list queries and the HTTP index header read.
const (
	tableIndex       = "index"
	tableJobs        = "jobs"
	tableJobVersions = "job_version"
	tableEvals       = "evals"
	tableNodes       = "nodes"
	tableAllocs      = "allocs"
	tableDeployments = "deployments"
	// tableNodeUsage is derived from the allocations (see state_usage.go):
	// it is neither snapshotted nor indexed in the index table.
	tableNodeUsage = "node_usage"
)

// indexEntry is a row of the index table: the Raft index of the last write
// to a table.
type indexEntry struct {
	Key   string
	Value uint64
}

// schema builds the store's memdb schema. Every key that names a job starts
// with the namespace, so per-namespace reads (and, later, ACLs) are prefix
// scans rather than filters.
func schema() *memdb.DBSchema {
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		tableIndex: {
			Name: tableIndex,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Key"}},
			},
		},
		tableJobs: {
			Name: tableJobs,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: nsField("ID")},
			},
		},
		tableJobVersions: {
			Name: tableJobVersions,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
					&memdb.StringFieldIndex{Field: "Namespace"},
					&memdb.StringFieldIndex{Field: "ID"},
					&memdb.UintFieldIndex{Field: "Version"},
				}}},
			},
		},
		tableEvals: {
			Name: tableEvals,
			Indexes: map[string]*memdb.IndexSchema{
				"id":     idIndex(),
				"job":    {Name: "job", Indexer: nsField("JobID")},
				"modify": modifyIndex(),
			},
		},
		tableNodes: {
			Name:    tableNodes,
			Indexes: map[string]*memdb.IndexSchema{"id": idIndex()},
		},
		tableAllocs: {
			Name: tableAllocs,
			Indexes: map[string]*memdb.IndexSchema{
				"id":         idIndex(),
				"job":        {Name: "job", Indexer: nsField("JobID")},
				"node":       optionalField("node", "NodeID"),
				"eval":       optionalField("eval", "EvalID"),
				"deployment": optionalField("deployment", "DeploymentID"),
				"modify":     modifyIndex(),
			},
		},
		tableNodeUsage: {
			Name: tableNodeUsage,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "NodeID"}},
			},
		},
		tableServices: servicesTableSchema(),
		tableDeployments: {
			Name: tableDeployments,
			Indexes: map[string]*memdb.IndexSchema{
				"id":  idIndex(),
				"job": {Name: "job", Indexer: nsField("JobID")},
			},
		},
	}}
}

func idIndex() *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}}
}

// modifyIndex orders rows by the Raft index of their last write, so the
// leader's watchers read only what changed since they last looked instead
// of scanning tables that hold millions of rows.
func modifyIndex() *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: "modify", Indexer: &memdb.UintFieldIndex{Field: "ModifyIndex"}}
}

// nsField keys by namespace then field; a missing value is an error, since
// an object without a namespace would be invisible to namespaced reads.
func nsField(field string) *memdb.CompoundIndex {
	return &memdb.CompoundIndex{Indexes: []memdb.Indexer{
		&memdb.StringFieldIndex{Field: "Namespace"},
		&memdb.StringFieldIndex{Field: field},
	}}
}

// optionalField indexes a reference that may legitimately be empty (an
// allocation outside any deployment).
func optionalField(name, field string) *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: name, AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: field}}
}

// tables lists the object tables in the order snapshots write them.
var tables = []string{tableJobs, tableJobVersions, tableEvals, tableNodes, tableAllocs, tableDeployments, tableServices}

func newMemDB() (*memdb.MemDB, error) {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return nil, fmt.Errorf("creating state store: %w", err)
	}
	return db, nil
}
