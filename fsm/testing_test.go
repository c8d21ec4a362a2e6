package fsm

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

// Fixtures: small but complete objects, so round trips exercise nested
// fields. Each call returns fresh objects.

func mockJob(namespace, id string) *structs.Job {
	return &structs.Job{
		ID:          id,
		Namespace:   namespace,
		Type:        structs.JobTypeService,
		Priority:    50,
		Datacenters: []string{"dc1"},
		Constraints: []*structs.Constraint{{Attribute: "${node.class}", Operator: "=", Value: "edge"}},
		Update:      &structs.UpdateStrategy{MaxParallel: 1, MinHealthyTime: structs.Duration(5e9)},
		Groups: []*structs.TaskGroup{{
			Name:    "web",
			Count:   1,
			Restart: &structs.RestartPolicy{Attempts: 2, Mode: structs.RestartModeFail},
			Network: &structs.NetworkSpec{Mode: structs.NetworkModeBridge, Ports: []*structs.Port{{Label: "http", To: 8080}}},
			Tasks: []*structs.Task{{
				Name:      "server",
				Image:     "127.0.0.1:5000/drover/busybox:latest",
				Command:   "/bin/httpd",
				Args:      []string{"-f"},
				Env:       map[string]string{"GREETING": "hello"},
				Resources: &structs.Resources{CPU: 100, Memory: 64},
			}},
		}},
		Meta: map[string]string{"owner": "team"},
	}
}

func mockBatchJob(namespace, id string) *structs.Job {
	j := mockJob(namespace, id)
	j.Type = structs.JobTypeBatch
	return j
}

func mockEval(job *structs.Job, id string) *structs.Evaluation {
	return &structs.Evaluation{
		ID:          id,
		Namespace:   job.Namespace,
		Priority:    job.Priority,
		Type:        job.Type,
		TriggeredBy: structs.EvalTriggerJobRegister,
		JobID:       job.ID,
		Status:      structs.EvalStatusPending,
		CreateTime:  1000,
		ModifyTime:  1000,
	}
}

func mockAlloc(job *structs.Job, id, nodeID, evalID string) *structs.Allocation {
	return &structs.Allocation{
		ID:            id,
		Namespace:     job.Namespace,
		EvalID:        evalID,
		Name:          job.ID + ".web[0]",
		NodeID:        nodeID,
		DeploymentID:  "dep-" + job.ID,
		JobID:         job.ID,
		Job:           job,
		TaskGroup:     "web",
		Resources:     &structs.AllocatedResources{Tasks: map[string]*structs.Resources{"server": {CPU: 100, Memory: 64}}},
		DesiredStatus: structs.AllocDesiredRun,
		ClientStatus:  structs.AllocClientPending,
		TaskStates:    map[string]*structs.TaskState{"server": {State: structs.TaskStatePending}},
		CreateTime:    1000,
		ModifyTime:    1000,
	}
}

func mockNode(id string) *structs.Node {
	return &structs.Node{
		ID:                    id,
		Name:                  "node-" + id,
		Datacenter:            "dc1",
		Attributes:            map[string]string{"kernel.name": "linux"},
		Resources:             &structs.NodeResources{CPU: 4000, Memory: 8192},
		Drivers:               map[string]*structs.DriverInfo{"containerd": {Detected: true, Healthy: true}},
		Status:                structs.NodeStatusReady,
		SchedulingEligibility: structs.NodeEligible,
	}
}

func mockDeployment(job *structs.Job, id string) *structs.Deployment {
	return &structs.Deployment{
		ID:         id,
		Namespace:  job.Namespace,
		JobID:      job.ID,
		JobVersion: job.Version,
		TaskGroups: map[string]*structs.DeploymentState{"web": {DesiredTotal: 1, PlacedCanaries: []string{"a"}}},
		Status:     structs.DeploymentStatusRunning,
	}
}

func newTestStore(t testing.TB) *StateStore {
	t.Helper()
	s, err := NewStateStore()
	require.NoError(t, err)
	return s
}

// dump lists every row of every table, table by table in key order, so two
// stores compare with one require.Equal.
func dump(t require.TestingT, s *StateStore) map[string][]any {
	helper(t)
	txn := s.db.Txn(false)
	out := make(map[string][]any)
	for _, table := range append([]string{tableIndex, tableNodeUsage}, tables...) {
		it, err := txn.Get(table, "id")
		require.NoError(t, err)
		for raw := it.Next(); raw != nil; raw = it.Next() {
			out[table] = append(out[table], raw)
		}
	}
	return out
}

func evalID(n int) string { return fmt.Sprintf("eval-%04d", n) }

// helper marks the caller as a test helper when t can (rapid's T cannot).
func helper(t require.TestingT) {
	if h, ok := t.(interface{ Helper() }); ok {
		h.Helper()
	}
}
