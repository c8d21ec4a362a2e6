package fsm

import (
	"testing"

	"github.com/hashicorp/go-memdb"
	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

// reflected is the memdb indexer the typed one replaces.
func reflected(t *testing.T, ix memdb.Indexer) memdb.SingleIndexer {
	switch x := ix.(type) {
	case *stringIndex:
		return &x.StringFieldIndex
	case *uint64Index:
		return &x.UintFieldIndex
	case *stoppedIndex:
		return x
	case *memdb.CompoundIndex:
		c := &memdb.CompoundIndex{AllowMissing: x.AllowMissing}
		for _, sub := range x.Indexes {
			c.Indexes = append(c.Indexes, reflected(t, sub).(memdb.Indexer))
		}
		return c
	case memdb.SingleIndexer:
		return x
	}
	t.Fatalf("unexpected indexer %T", ix)
	return nil
}

// Every typed indexer builds exactly the key memdb's reflection-based one
// builds, for full objects and for objects with the indexed fields empty.
func TestTypedIndexersMatchMemdb(t *testing.T) {
	job := mockJob("default", "web")
	job.Version = 7
	job.ModifyIndex = 9
	eval := mockEval(job, "e1")
	eval.ModifyIndex = 12
	alloc := mockAlloc(job, "a1", "n1", "e1")
	alloc.DeploymentID = "d1"
	alloc.ModifyIndex = 1 << 40
	objects := map[string][]any{
		tableJobs:        {job, &structs.Job{}},
		tableJobVersions: {job, &structs.Job{Namespace: "default", ID: "x"}},
		tableEvals:       {eval, &structs.Evaluation{}},
		tableNodes:       {mockNode("n1"), &structs.Node{}},
		tableAllocs:      {alloc, &structs.Allocation{}},
		tableNodeUsage:   {&structs.NodeUsage{NodeID: "n1"}, &structs.NodeUsage{}},
		tableDeployments: {mockDeployment(job, "d1"), &structs.Deployment{}},
	}
	for name, table := range schema().Tables {
		for _, ix := range table.Indexes {
			for _, obj := range objects[name] {
				typed, ok := ix.Indexer.(memdb.SingleIndexer)
				require.True(t, ok, "%s.%s", name, ix.Name)
				wantOK, wantKey, wantErr := reflected(t, ix.Indexer).FromObject(obj)
				gotOK, gotKey, gotErr := typed.FromObject(obj)
				require.Equal(t, wantErr, gotErr, "%s.%s", name, ix.Name)
				require.Equal(t, wantOK, gotOK, "%s.%s %+v", name, ix.Name, obj)
				if wantOK {
					require.Equal(t, wantKey, gotKey, "%s.%s", name, ix.Name)
				}
			}
		}
	}
}
