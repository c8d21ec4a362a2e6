package server

import (
	"github.com/drover-sh/drover/fsm"
	"github.com/drover-sh/drover/scheduler"
	"github.com/drover-sh/drover/structs"
)

// snapshotState adapts a store snapshot to the scheduler's State: plain
// slices out, no memdb types, no watch sets. The objects are the store's
// own and must not be modified; the scheduler copies what it changes.
type snapshotState struct {
	snap  *fsm.StateSnapshot
	index uint64
}

var _ scheduler.State = (*snapshotState)(nil)

func newSnapshotState(snap *fsm.StateSnapshot) *snapshotState {
	return &snapshotState{snap: snap, index: snap.LatestIndex()}
}

func (s *snapshotState) Nodes() ([]*structs.Node, error) { return s.snap.NodesByPrefix(nil, "") }

func (s *snapshotState) NodeByID(id string) (*structs.Node, error) { return s.snap.NodeByID(nil, id) }

func (s *snapshotState) JobByID(namespace, id string) (*structs.Job, error) {
	return s.snap.JobByID(nil, namespace, id)
}

// AllocsByJob includes allocations of an earlier job of the same ID (one
// purged and registered again): they may still run, and only the
// scheduler of the current job will ever stop them.
func (s *snapshotState) AllocsByJob(namespace, jobID string) ([]*structs.Allocation, error) {
	return s.snap.AllocsByJob(nil, namespace, jobID, true)
}

func (s *snapshotState) AllocsByNode(nodeID string) ([]*structs.Allocation, error) {
	return s.snap.AllocsByNode(nil, nodeID)
}

func (s *snapshotState) NodeUsage(nodeID string) (*structs.NodeUsage, error) {
	return s.snap.NodeUsage(nil, nodeID)
}

func (s *snapshotState) AllocByID(id string) (*structs.Allocation, error) {
	return s.snap.AllocByID(nil, id)
}

func (s *snapshotState) EvalByID(id string) (*structs.Evaluation, error) {
	return s.snap.EvalByID(nil, id)
}

func (s *snapshotState) LatestDeploymentByJob(namespace, jobID string) (*structs.Deployment, error) {
	return s.snap.LatestDeploymentByJob(nil, namespace, jobID)
}

func (s *snapshotState) Index() uint64 { return s.index }

// jobOverlayState is a snapshot with one job replaced, for Job.Plan's dry
// run: the scheduler sees the job as if it were registered.
type jobOverlayState struct {
	*snapshotState
	job *structs.Job
}

func (s *jobOverlayState) JobByID(namespace, id string) (*structs.Job, error) {
	if namespace == s.job.Namespace && id == s.job.ID {
		return s.job, nil
	}
	return s.snapshotState.JobByID(namespace, id)
}
