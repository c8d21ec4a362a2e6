package server

import (
	"maps"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/client"
	dmock "github.com/drover-sh/drover/client/driver/mock"
	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

// testClient starts a client with the mock driver against srv and waits
// until it registered.
func testClient(t *testing.T, srv *Server) *client.Client {
	t.Helper()
	addr := srv.RPCAddr().String()
	nodeID := structs.GenerateUUID()
	c, err := client.New(client.Config{
		NodeID: nodeID, Name: "node-" + nodeID[:8], DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:4750",
		Servers: func() []string { return []string{addr} },
		Driver:  dmock.New(dmock.NewStore(), "containerd"),
		Logger:  srv.logger.Named("client"),
		// Room for two versions of a count-4 group side by side.
		Reserved:            &structs.NodeResources{CPU: 100, Memory: 256},
		FingerprintInterval: time.Second,
	})
	require.NoError(t, err)
	t.Cleanup(func() { c.Shutdown() })
	select {
	case <-c.Registered():
	case <-time.After(10 * time.Second):
		t.Fatal("client did not register")
	}
	return c
}

// rollingServiceJob is a count-4 service of one long-running mock task,
// rolled out one allocation at a time.
func rollingServiceJob(id string, autoRevert bool) *structs.Job {
	j := mock.Job()
	j.ID = id
	j.Update = &structs.UpdateStrategy{
		MaxParallel: 1, MinHealthyTime: structs.Duration(150 * time.Millisecond),
		HealthyDeadline: structs.Duration(5 * time.Second), ProgressDeadline: structs.Duration(10 * time.Second),
		AutoRevert: autoRevert,
	}
	g := j.Groups[0]
	g.Update = nil
	g.Count = 4
	g.Network = nil
	g.Services = nil
	g.Restart = &structs.RestartPolicy{Attempts: 0, Interval: structs.Duration(time.Hour), Delay: structs.Duration(100 * time.Millisecond), Mode: structs.RestartModeFail}
	g.Reschedule = &structs.ReschedulePolicy{Attempts: 0, Interval: structs.Duration(time.Hour), Delay: structs.Duration(time.Hour), DelayFunction: "constant"}
	task := g.Tasks[0]
	task.Image = "127.0.0.1:5000/drover/busybox:latest"
	task.Command, task.Args = "", nil
	task.Env = map[string]string{"run_for": "1h", "version": "1"}
	task.Resources = &structs.Resources{CPU: 50, Memory: 32}
	task.KillTimeout = structs.Duration(time.Second)
	return j
}

func register(t *testing.T, srv *Server, job *structs.Job) *structs.JobRegisterResponse {
	t.Helper()
	var resp structs.JobRegisterResponse
	require.NoError(t, srv.RPC("Job.Register", &structs.JobRegisterRequest{Job: job}, &resp))
	return &resp
}

// healthyAllocs counts the job's allocations that are meant to run and
// do, with the given task env version; a deployment's allocations count
// once their client reported them healthy.
func healthyAllocs(t *testing.T, srv *Server, job *structs.Job, version string) int {
	allocs, err := srv.State().Snapshot().AllocsByJob(nil, job.Namespace, job.ID, false)
	require.NoError(t, err)
	n := 0
	for _, a := range allocs {
		if a.DesiredStatus != structs.AllocDesiredRun || a.ClientStatus != structs.AllocClientRunning {
			continue
		}
		if ds := a.DeploymentStatus; ds == nil || ds.Healthy == nil || !*ds.Healthy {
			continue
		}
		if version == "" || a.Job.LookupGroup("web").Tasks[0].Env["version"] == version {
			n++
		}
	}
	return n
}

// waitDeployment waits until the job's deployment of the version has
// ended, and returns it.
func waitDeployment(t *testing.T, srv *Server, job *structs.Job, version uint64, within time.Duration) *structs.Deployment {
	t.Helper()
	var d *structs.Deployment
	require.Eventually(t, func() bool {
		all, err := srv.State().Snapshot().DeploymentsByJob(nil, job.Namespace, job.ID)
		require.NoError(t, err)
		for _, x := range all {
			if x.JobVersion == version && !x.Active() {
				d = x
				return true
			}
		}
		return false
	}, within, 10*time.Millisecond, "deployment of version %d did not end", version)
	return d
}

func TestDeploymentWatcher_RollingUpdateKeepsThreeHealthy(t *testing.T) {
	srv := testServer(t, withSchedulers)
	testClient(t, srv)
	job := rollingServiceJob("web", true)
	register(t, srv, job)
	d1 := waitDeployment(t, srv, job, 0, 10*time.Second)
	require.Equal(t, structs.DeploymentStatusSuccessful, d1.Status, d1.StatusDescription)
	require.Equal(t, 4, d1.TaskGroups["web"].HealthyAllocs)
	require.Equal(t, 4, healthyAllocs(t, srv, job, "1"))
	v1, err := srv.State().JobByID(nil, job.Namespace, job.ID)
	require.NoError(t, err)
	require.True(t, v1.Stable, "a version whose deployment succeeded is stable")

	// Sample while v2 rolls out: never fewer than 3 healthy.
	var low atomic.Int64
	low.Store(4)
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if n := int64(healthyAllocs(t, srv, job, "")); n < low.Load() {
				low.Store(n)
			}
		}
	}()
	v2 := job.Copy()
	v2.Groups[0].Tasks[0].Env["version"] = "2"
	start := time.Now()
	register(t, srv, v2)
	d2 := waitDeployment(t, srv, job, 1, 15*time.Second)
	close(stop)
	<-sampled
	t.Logf("rollout of 4 allocations took %s", time.Since(start))
	require.Equal(t, structs.DeploymentStatusSuccessful, d2.Status, d2.StatusDescription)
	s := d2.TaskGroups["web"]
	require.Equal(t, 4, s.DesiredTotal)
	require.Equal(t, 4, s.PlacedAllocs)
	require.Equal(t, 4, s.HealthyAllocs)
	require.Zero(t, s.UnhealthyAllocs)
	require.GreaterOrEqual(t, low.Load(), int64(3), "fewer than 3 healthy allocations during the rollout")
	require.Eventually(t, func() bool { return healthyAllocs(t, srv, job, "2") == 4 }, 5*time.Second, 10*time.Millisecond)
}

func TestDeploymentWatcher_FailedDeploymentRevertsToStable(t *testing.T) {
	srv := testServer(t, withSchedulers)
	testClient(t, srv)
	job := rollingServiceJob("web", true)
	// v2's failed allocation is replaced once the job is reverted.
	job.Groups[0].Reschedule = &structs.ReschedulePolicy{Attempts: 10, Interval: structs.Duration(time.Hour), Delay: structs.Duration(100 * time.Millisecond), DelayFunction: "constant"}
	register(t, srv, job)
	d1 := waitDeployment(t, srv, job, 0, 10*time.Second)
	require.Equal(t, structs.DeploymentStatusSuccessful, d1.Status, d1.StatusDescription)

	// v2's tasks exit at once.
	v2 := job.Copy()
	v2.Groups[0].Tasks[0].Env = map[string]string{"run_for": "50ms", "exit_code": "1", "version": "2"}
	register(t, srv, v2)
	d2 := waitDeployment(t, srv, job, 1, 10*time.Second)
	require.Equal(t, structs.DeploymentStatusFailed, d2.Status)
	require.Contains(t, d2.StatusDescription, "is unhealthy")
	require.Contains(t, d2.StatusDescription, "rolling back to job version 0")
	require.Equal(t, 1, d2.TaskGroups["web"].UnhealthyAllocs)

	// The revert is a new version equal in spec to v1, and v1's spec runs
	// count 4 again.
	var cur *structs.Job
	require.Eventually(t, func() bool {
		var err error
		cur, err = srv.State().JobByID(nil, job.Namespace, job.ID)
		require.NoError(t, err)
		return cur.Version == 2
	}, 5*time.Second, 10*time.Millisecond)
	first, err := srv.State().JobByIDAndVersion(nil, job.Namespace, job.ID, 0)
	require.NoError(t, err)
	require.False(t, cur.SpecChanged(first), "the reverted version is v1's spec")
	require.Eventually(t, func() bool {
		allocs, err := srv.State().Snapshot().AllocsByJob(nil, job.Namespace, job.ID, false)
		require.NoError(t, err)
		n := 0
		for _, a := range allocs {
			if a.DesiredStatus == structs.AllocDesiredRun && a.ClientStatus == structs.AllocClientRunning &&
				a.Job.Version == 2 && a.Job.LookupGroup("web").Tasks[0].Env["version"] == "1" {
				n++
			}
		}
		return n == 4
	}, 15*time.Second, 10*time.Millisecond, "v1's spec does not run count 4 again")
}

func TestDeploymentProgress(t *testing.T) {
	now := time.Unix(1000, 0)
	yes, no := true, false
	d := &structs.Deployment{
		ID: "d", Status: structs.DeploymentStatusRunning, CreateTime: now.Add(-time.Minute).UnixNano(),
		TaskGroups: map[string]*structs.DeploymentState{"web": {DesiredTotal: 2, ProgressDeadline: structs.Duration(2 * time.Minute)}},
	}
	alloc := func(id string, healthy *bool) *structs.Allocation {
		a := &structs.Allocation{ID: id, TaskGroup: "web"}
		if healthy != nil {
			a.DeploymentStatus = &structs.AllocDeploymentStatus{Healthy: healthy}
		}
		return a
	}

	// Placed, not yet healthy: counts and the progress deadline set.
	nd, progressed, wake := deploymentProgress(d, []*structs.Allocation{alloc("a", nil), alloc("b", nil)}, now)
	require.NotNil(t, nd)
	require.False(t, progressed)
	require.Equal(t, 2, nd.TaskGroups["web"].PlacedAllocs)
	require.Equal(t, now.Add(time.Minute), wake)
	require.Equal(t, structs.DeploymentStatusRunning, nd.Status)

	// Nothing new: no write.
	again, _, _ := deploymentProgress(nd, []*structs.Allocation{alloc("a", nil), alloc("b", nil)}, now)
	require.Nil(t, again)

	// One healthy: progress moves the deadline.
	later := now.Add(30 * time.Second)
	nd2, progressed, wake := deploymentProgress(nd, []*structs.Allocation{alloc("a", &yes), alloc("b", nil)}, later)
	require.True(t, progressed)
	require.Equal(t, later.Add(2*time.Minute), wake)
	require.Equal(t, 1, nd2.TaskGroups["web"].HealthyAllocs)

	// Deadline missed.
	nd3, _, _ := deploymentProgress(nd2, []*structs.Allocation{alloc("a", &yes), alloc("b", nil)}, later.Add(3*time.Minute))
	require.Equal(t, structs.DeploymentStatusFailed, nd3.Status)
	require.Contains(t, nd3.StatusDescription, "group web missed its progress deadline")

	// Unhealthy fails at once, naming the allocation.
	nd4, progressed, _ := deploymentProgress(nd2, []*structs.Allocation{alloc("a", &yes), alloc("b", &no)}, later)
	require.True(t, progressed)
	require.Equal(t, structs.DeploymentStatusFailed, nd4.Status)
	require.Contains(t, nd4.StatusDescription, "allocation b is unhealthy")

	// All healthy: successful.
	nd5, _, _ := deploymentProgress(nd2, []*structs.Allocation{alloc("a", &yes), alloc("b", &yes)}, later)
	require.Equal(t, structs.DeploymentStatusSuccessful, nd5.Status)
}

func TestDeploymentProgress_Canaries(t *testing.T) {
	now := time.Unix(1000, 0)
	yes := true
	canary := func(id string, healthy bool) *structs.Allocation {
		a := &structs.Allocation{ID: id, TaskGroup: "web", DesiredStatus: structs.AllocDesiredRun, ClientStatus: structs.AllocClientRunning,
			DeploymentStatus: &structs.AllocDeploymentStatus{Canary: true}}
		if healthy {
			a.DeploymentStatus.Healthy = &yes
		}
		return a
	}
	newDeployment := func(autoPromote bool) *structs.Deployment {
		return &structs.Deployment{
			ID: "d", Status: structs.DeploymentStatusRunning, CreateTime: now.Add(-time.Minute).UnixNano(),
			TaskGroups: map[string]*structs.DeploymentState{"web": {
				DesiredTotal: 1, DesiredCanaries: 1, AutoPromote: autoPromote, ProgressDeadline: structs.Duration(2 * time.Minute),
			}},
		}
	}

	// A healthy canary of a count-1 group is not success: the deployment
	// waits for a person, and no deadline runs meanwhile.
	nd, progressed, wake := deploymentProgress(newDeployment(false), []*structs.Allocation{canary("c", true)}, now)
	require.True(t, progressed)
	require.Equal(t, structs.DeploymentStatusRunning, nd.Status)
	require.Equal(t, structs.DeploymentDescAwaitingPromotion, nd.StatusDescription)
	require.Equal(t, []string{"c"}, nd.TaskGroups["web"].PlacedCanaries)
	require.False(t, nd.TaskGroups["web"].Promoted)
	require.True(t, wake.IsZero(), "no progress deadline while a person is awaited")
	require.Zero(t, nd.TaskGroups["web"].RequireProgressBy)
	hours, _, _ := deploymentProgress(nd, []*structs.Allocation{canary("c", true)}, now.Add(10*time.Hour))
	require.Nil(t, hours, "still waiting, hours later")

	// Not yet healthy: the deadline runs.
	nd, _, wake = deploymentProgress(newDeployment(false), []*structs.Allocation{canary("c", false)}, now)
	require.Equal(t, structs.DeploymentDescRunning, nd.StatusDescription)
	require.Equal(t, now.Add(time.Minute), wake)

	// auto_promote: promoted by the watcher once the canary is healthy,
	// with a fresh deadline; the promoted canary then completes a count-1
	// group.
	nd, progressed, _ = deploymentProgress(newDeployment(true), []*structs.Allocation{canary("c", true)}, now)
	require.True(t, progressed)
	require.True(t, nd.TaskGroups["web"].Promoted)
	require.Equal(t, structs.DeploymentStatusSuccessful, nd.Status)
}

func TestPromotable(t *testing.T) {
	d := &structs.Deployment{ID: "d", TaskGroups: map[string]*structs.DeploymentState{
		"api": {DesiredCanaries: 2}, "web": {DesiredCanaries: 1}, "db": {},
	}}
	err := promotable(d, map[string]int{"api": 1, "web": 1})
	require.ErrorContains(t, err, `group "api" has 1 of 2 canaries healthy`)
	require.Equal(t, structs.ErrInvalid, structs.CodeOf(err), "a 400, not a 500")
	require.NoError(t, promotable(d, map[string]int{"api": 2, "web": 1}))
	d.TaskGroups["api"].Promoted, d.TaskGroups["web"].Promoted = true, true
	require.ErrorContains(t, promotable(d, nil), "promoted already")
	require.ErrorContains(t, promotable(&structs.Deployment{ID: "d", TaskGroups: map[string]*structs.DeploymentState{"db": {}}}, nil), "has no canaries")
}

// canaryServiceJob is rollingServiceJob whose updates start with one
// canary (auto_revert on, so its first version is a deployment too).
func canaryServiceJob(id string, autoPromote bool) *structs.Job {
	j := rollingServiceJob(id, true)
	j.Update.Canary, j.Update.AutoPromote = 1, autoPromote
	return j
}

// liveByVersion counts the job's allocations meant to run, by task env
// version.
func liveByVersion(t *testing.T, srv *Server, job *structs.Job) map[string]int {
	allocs, err := srv.State().Snapshot().AllocsByJob(nil, job.Namespace, job.ID, false)
	require.NoError(t, err)
	out := make(map[string]int)
	for _, a := range allocs {
		if a.DesiredStatus == structs.AllocDesiredRun && !a.ClientTerminalStatus() {
			out[a.Job.LookupGroup("web").Tasks[0].Env["version"]]++
		}
	}
	return out
}

func TestDeploymentWatcher_CanaryManualPromotion(t *testing.T) {
	srv := testServer(t, withSchedulers)
	testClient(t, srv)
	job := canaryServiceJob("web", false)
	register(t, srv, job)
	d1 := waitDeployment(t, srv, job, 0, 10*time.Second)
	require.Equal(t, structs.DeploymentStatusSuccessful, d1.Status, d1.StatusDescription)

	v2 := job.Copy()
	v2.Groups[0].Tasks[0].Env["version"] = "2"
	register(t, srv, v2)
	var d2 *structs.Deployment
	require.Eventually(t, func() bool {
		d, err := srv.State().LatestDeploymentByJob(nil, job.Namespace, job.ID)
		require.NoError(t, err)
		d2 = d
		return d != nil && d.JobVersion == 1 && d.StatusDescription == structs.DeploymentDescAwaitingPromotion
	}, 10*time.Second, 10*time.Millisecond, "the canary did not become healthy")
	require.Equal(t, structs.DeploymentStatusRunning, d2.Status)
	require.Len(t, d2.TaskGroups["web"].PlacedCanaries, 1)
	require.Equal(t, map[string]int{"1": 4, "2": 1}, liveByVersion(t, srv, job), "the canary runs beside all of v1")

	var resp structs.DeploymentUpdateResponse
	require.NoError(t, srv.RPC("Deployment.Promote", &structs.DeploymentPromoteRequest{DeploymentID: d2.ID}, &resp))
	require.NotEmpty(t, resp.EvalID)
	done := waitDeployment(t, srv, job, 1, 20*time.Second)
	require.Equal(t, structs.DeploymentStatusSuccessful, done.Status, done.StatusDescription)
	s := done.TaskGroups["web"]
	require.True(t, s.Promoted)
	require.Equal(t, 4, s.PlacedAllocs, "the canary and three replacements")
	require.Equal(t, 4, s.HealthyAllocs)
	require.Eventually(t, func() bool {
		return maps.Equal(liveByVersion(t, srv, job), map[string]int{"2": 4})
	}, 5*time.Second, 10*time.Millisecond)

	// A second promotion is refused with a reason.
	err := srv.RPC("Deployment.Promote", &structs.DeploymentPromoteRequest{DeploymentID: d2.ID}, &resp)
	require.ErrorContains(t, err, "is not active")
}

func TestDeploymentWatcher_CanaryAutoPromote(t *testing.T) {
	srv := testServer(t, withSchedulers)
	testClient(t, srv)
	job := canaryServiceJob("web", true)
	register(t, srv, job)
	waitDeployment(t, srv, job, 0, 10*time.Second)
	v2 := job.Copy()
	v2.Groups[0].Tasks[0].Env["version"] = "2"
	register(t, srv, v2)
	done := waitDeployment(t, srv, job, 1, 20*time.Second)
	require.Equal(t, structs.DeploymentStatusSuccessful, done.Status, done.StatusDescription)
	require.True(t, done.TaskGroups["web"].Promoted)
	require.Len(t, done.TaskGroups["web"].PlacedCanaries, 1)
	require.Eventually(t, func() bool {
		return maps.Equal(liveByVersion(t, srv, job), map[string]int{"2": 4})
	}, 5*time.Second, 10*time.Millisecond)
}
