package client

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/server"
	"github.com/drover-sh/drover/structs"
)

// rollingJob is a one-allocation service whose updates are rolled out
// by a deployment with the given health times.
func rollingJob(job *structs.Job, minHealthy, deadline time.Duration) *structs.Job {
	job.Update = &structs.UpdateStrategy{
		MaxParallel: 1, MinHealthyTime: structs.Duration(minHealthy),
		HealthyDeadline: structs.Duration(deadline), ProgressDeadline: structs.Duration(time.Minute),
	}
	job.Groups[0].Update = nil
	return job
}

// deployV2 runs v1, waits until it runs, registers v2 (changed by
// change) and returns the allocation of v2 once the servers placed it
// within a deployment.
func deployV2(t *testing.T, srv *server.Server, job *structs.Job, change func(*structs.Job)) *structs.Allocation {
	t.Helper()
	registerJob(t, srv, job)
	v1 := waitAlloc(t, srv, job)
	waitServerStatus(t, srv, v1.ID, structs.AllocClientRunning, 10*time.Second)
	require.Nil(t, v1.DeploymentStatus, "the first version is not part of a deployment")
	v2 := job.Copy()
	change(v2)
	registerJob(t, srv, v2)
	var a *structs.Allocation
	require.Eventually(t, func() bool {
		for _, x := range serverAllocs(t, srv, job) {
			if x.DeploymentID != "" {
				a = x
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "v2 was not placed by a deployment")
	return a
}

// waitHealth waits until the servers hold the allocation's deployment
// health and returns it.
func waitHealth(t *testing.T, srv *server.Server, allocID string, within time.Duration) *structs.AllocDeploymentStatus {
	t.Helper()
	var ds *structs.AllocDeploymentStatus
	require.Eventually(t, func() bool {
		a, err := srv.State().Snapshot().AllocByID(nil, allocID)
		require.NoError(t, err)
		if a != nil && a.DeploymentStatus != nil && a.DeploymentStatus.Healthy != nil {
			ds = a.DeploymentStatus
		}
		return ds != nil
	}, within, 5*time.Millisecond, "allocation %s got no deployment health", allocID)
	return ds
}

func TestClient_DeploymentHealthAfterMinHealthyTime(t *testing.T) {
	srv := testServer(t)
	newTestNode(t, srv).start()
	job := rollingJob(testJob(structs.JobTypeService, 1, map[string]string{"run_for": "1h"}, nil), 300*time.Millisecond, 10*time.Second)
	a := deployV2(t, srv, job, func(j *structs.Job) { j.Groups[0].Tasks[0].Env["v"] = "2" })
	running := waitServerStatus(t, srv, a.ID, structs.AllocClientRunning, 10*time.Second)
	ds := waitHealth(t, srv, a.ID, 5*time.Second)
	require.True(t, *ds.Healthy)
	started := running.TaskStates["work"].StartedAt
	require.GreaterOrEqual(t, ds.Timestamp-started, int64(300*time.Millisecond), "healthy before min_healthy_time")
}

func TestClient_DeploymentUnhealthyWhenATaskFails(t *testing.T) {
	srv := testServer(t)
	newTestNode(t, srv).start()
	job := rollingJob(testJob(structs.JobTypeService, 1, map[string]string{"run_for": "1h"}, nil), 2*time.Second, 10*time.Second)
	a := deployV2(t, srv, job, func(j *structs.Job) {
		j.Groups[0].Tasks[0].Env = map[string]string{"run_for": "100ms", "exit_code": "1"}
	})
	ds := waitHealth(t, srv, a.ID, 5*time.Second)
	require.False(t, *ds.Healthy)
}

func TestClient_DeploymentHealthFollowsChecks(t *testing.T) {
	srv := testServer(t)
	newTestNode(t, srv).start()
	h := newHealthServer(t)
	job := rollingJob(serviceJob(h.port, httpCheck(50*time.Millisecond)), 100*time.Millisecond, time.Second)
	job.Groups[0].Tasks[0].Env = map[string]string{"run_for": "1h"}

	// v2's check never passes: unhealthy once healthy_deadline passed,
	// though its task runs.
	h.healthy.Store(false)
	a := deployV2(t, srv, job, func(j *structs.Job) { j.Groups[0].Tasks[0].Env["v"] = "2" })
	running := waitServerStatus(t, srv, a.ID, structs.AllocClientRunning, 10*time.Second)
	ds := waitHealth(t, srv, a.ID, 5*time.Second)
	require.False(t, *ds.Healthy)
	require.GreaterOrEqual(t, ds.Timestamp-running.TaskStates["work"].StartedAt, int64(900*time.Millisecond))

	// v3 with a passing check is healthy.
	h.healthy.Store(true)
	v3 := job.Copy()
	v3.Groups[0].Tasks[0].Env = map[string]string{"run_for": "1h", "v": "3"}
	registerJob(t, srv, v3)
	var b *structs.Allocation
	require.Eventually(t, func() bool {
		for _, x := range serverAllocs(t, srv, job) {
			if x.DeploymentID != "" && x.DeploymentID != a.DeploymentID {
				b = x
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "v3 was not placed by a deployment")
	ds = waitHealth(t, srv, b.ID, 5*time.Second)
	require.True(t, *ds.Healthy)
}
