package fsm

import (
	"fmt"

	"github.com/hashicorp/go-memdb"

	"github.com/drover-sh/drover/structs"
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
				"id": {Name: "id", Unique: true, Indexer: nsKey(jobNamespace, "ID", func(j *structs.Job) string { return j.ID })},
			},
		},
		tableJobVersions: {
			Name: tableJobVersions,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
					stringField("Namespace", jobNamespace),
					stringField("ID", func(j *structs.Job) string { return j.ID }),
					uint64Field("Version", func(j *structs.Job) uint64 { return j.Version }),
				}}},
			},
		},
		tableEvals: {
			Name: tableEvals,
			Indexes: map[string]*memdb.IndexSchema{
				"id":     {Name: "id", Unique: true, Indexer: stringField("ID", func(e *structs.Evaluation) string { return e.ID })},
				"job":    {Name: "job", Indexer: nsKey(evalNamespace, "JobID", func(e *structs.Evaluation) string { return e.JobID })},
				"modify": {Name: "modify", Indexer: uint64Field("ModifyIndex", func(e *structs.Evaluation) uint64 { return e.ModifyIndex })},
			},
		},
		tableNodes: {
			Name: tableNodes,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: stringField("ID", func(n *structs.Node) string { return n.ID })},
			},
		},
		tableAllocs: {
			Name: tableAllocs,
			Indexes: map[string]*memdb.IndexSchema{
				"id":   {Name: "id", Unique: true, Indexer: stringField("ID", func(a *structs.Allocation) string { return a.ID })},
				"job":  {Name: "job", Indexer: nsKey(allocNamespace, "JobID", func(a *structs.Allocation) string { return a.JobID })},
				"node": {Name: "node", AllowMissing: true, Indexer: stringField("NodeID", func(a *structs.Allocation) string { return a.NodeID })},
				// No index by deployment: every allocation write (a
				// placement, each client report) would update one more
				// tree on every server, about a third more work per
				// write; a deployment's allocations are read from its
				// job's instead (AllocsByDeployment).
				// stopped orders the terminal allocations by the Raft index
				// of their last write, so the leader's watcher reads only
				// those that stopped since it last looked.
				"stopped": {Name: "stopped", AllowMissing: true, Indexer: &stoppedIndex{UintFieldIndex: memdb.UintFieldIndex{Field: "ModifyIndex"}}},
			},
		},
		tableNodeUsage: {
			Name: tableNodeUsage,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: stringField("NodeID", func(u *structs.NodeUsage) string { return u.NodeID })},
			},
		},
		tableServices: servicesTableSchema(),
		tableDeployments: {
			Name: tableDeployments,
			Indexes: map[string]*memdb.IndexSchema{
				"id":  {Name: "id", Unique: true, Indexer: stringField("ID", func(d *structs.Deployment) string { return d.ID })},
				"job": {Name: "job", Indexer: nsKey(func(d *structs.Deployment) string { return d.Namespace }, "JobID", func(d *structs.Deployment) string { return d.JobID })},
			},
		},
	}}
}

// idIndex and nsField are memdb's reflection-based indexers, for tables
// written too rarely to need typed ones (indexers.go).
func idIndex() *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}}
}

// nsField keys by namespace then field; a missing value is an error, since
// an object without a namespace would be invisible to namespaced reads.
func nsField(field string) *memdb.CompoundIndex {
	return &memdb.CompoundIndex{Indexes: []memdb.Indexer{
		&memdb.StringFieldIndex{Field: "Namespace"},
		&memdb.StringFieldIndex{Field: field},
	}}
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
