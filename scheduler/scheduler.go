package scheduler

import (
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/drover-sh/drover/structs"
)

// State is a read-only snapshot of the cluster. Implementations return
// the store's own objects: the scheduler never modifies them.
type State interface {
	Nodes() ([]*structs.Node, error)
	NodeByID(id string) (*structs.Node, error)
	JobByID(namespace, id string) (*structs.Job, error)
	// AllocsByJob returns every allocation of the job, of any version,
	// terminal ones included.
	AllocsByJob(namespace, jobID string) ([]*structs.Allocation, error)
	// AllocsByNode returns every allocation on the node, terminal ones
	// included.
	AllocsByNode(nodeID string) ([]*structs.Allocation, error)
	// NodeUsage returns what the live allocations on the node take, nil
	// when it runs none. Ranking reads it for every candidate node, so it
	// must not cost a walk of the node's allocations (the store keeps it
	// as a derived table).
	NodeUsage(nodeID string) (*structs.NodeUsage, error)
	AllocByID(id string) (*structs.Allocation, error)
	EvalByID(id string) (*structs.Evaluation, error)
	LatestDeploymentByJob(namespace, jobID string) (*structs.Deployment, error)
	// Index is the store index the snapshot was taken at.
	Index() uint64
}

// Planner is the scheduler's only way to change anything.
type Planner interface {
	// SubmitPlan commits what still fits of the plan. A non-nil State
	// means the commit was partial: the scheduler refreshes from it and
	// plans again.
	SubmitPlan(*structs.Plan) (*structs.PlanResult, State, error)
	// UpdateEval writes the final status of the evaluation being
	// processed.
	UpdateEval(*structs.Evaluation) error
	// CreateEval writes a new evaluation: a delayed reschedule, a rolling
	// update's next step, a blocked evaluation.
	CreateEval(*structs.Evaluation) error
	// ReblockEval puts a blocked evaluation that still cannot place
	// everything back among the blocked ones.
	ReblockEval(*structs.Evaluation) error
}

// Scheduler processes one evaluation.
type Scheduler interface {
	Process(*structs.Evaluation) error
}

// Factory builds a scheduler for one evaluation.
type Factory func(logger hclog.Logger, state State, planner Planner, now func() time.Time) Scheduler

// Options are the cluster-wide scheduler settings.
type Options struct {
	// Algorithm ranks the nodes that fit; empty means binpack.
	Algorithm structs.SchedulerAlgorithm
}
