package client

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/structs"
)

func TestRestartTracker(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	policy := func(attempts int, interval, delay time.Duration, mode string) *structs.RestartPolicy {
		return &structs.RestartPolicy{Attempts: attempts, Interval: structs.Duration(interval), Delay: structs.Duration(delay), Mode: mode}
	}
	ok := &driver.ExitResult{}
	bad := &driver.ExitResult{ExitCode: 3}
	type step struct {
		at      time.Duration // since t0
		exit    *driver.ExitResult
		startEr bool // a failed start instead of an exit
		restart bool
		delay   time.Duration
		failed  bool
	}
	cases := []struct {
		name    string
		policy  *structs.RestartPolicy
		jobType string
		steps   []step
	}{
		{
			name: "batch success never restarts", jobType: structs.JobTypeBatch,
			policy: policy(3, time.Hour, time.Second, structs.RestartModeFail),
			steps:  []step{{at: 0, exit: ok, restart: false, failed: false}},
		},
		{
			name: "service success is restarted", jobType: structs.JobTypeService,
			policy: policy(1, time.Hour, time.Second, structs.RestartModeFail),
			steps: []step{
				{at: 0, exit: ok, restart: true, delay: time.Second},
				{at: time.Minute, exit: ok, restart: false, failed: true},
			},
		},
		{
			name: "fail mode gives up after the attempts", jobType: structs.JobTypeBatch,
			policy: policy(2, time.Hour, 5*time.Second, structs.RestartModeFail),
			steps: []step{
				{at: 0, exit: bad, restart: true, delay: 5 * time.Second},
				{at: 10 * time.Second, exit: bad, restart: true, delay: 5 * time.Second},
				{at: 20 * time.Second, exit: bad, restart: false, failed: true},
			},
		},
		{
			name: "the window resets after the interval", jobType: structs.JobTypeService,
			policy: policy(1, time.Minute, time.Second, structs.RestartModeFail),
			steps: []step{
				{at: 0, exit: bad, restart: true, delay: time.Second},
				{at: 61 * time.Second, exit: bad, restart: true, delay: time.Second},
				{at: 70 * time.Second, exit: bad, restart: false, failed: true},
			},
		},
		{
			name: "delay mode waits out the interval", jobType: structs.JobTypeService,
			policy: policy(1, time.Minute, time.Second, structs.RestartModeDelay),
			steps: []step{
				{at: 0, exit: bad, restart: true, delay: time.Second},
				{at: 20 * time.Second, exit: bad, restart: true, delay: 40 * time.Second},
				// After the wait a new window starts with the attempts back.
				{at: 61 * time.Second, exit: bad, restart: true, delay: time.Second},
			},
		},
		{
			name: "delay mode never waits less than the delay", jobType: structs.JobTypeService,
			policy: policy(1, time.Minute, 10*time.Second, structs.RestartModeDelay),
			steps: []step{
				{at: 0, exit: bad, restart: true, delay: 10 * time.Second},
				// 5s of the window are left, but the delay is 10s.
				{at: 55 * time.Second, exit: bad, restart: true, delay: 10 * time.Second},
			},
		},
		{
			name: "zero attempts fails at once", jobType: structs.JobTypeBatch,
			policy: policy(0, time.Hour, time.Second, structs.RestartModeFail),
			steps:  []step{{at: 0, exit: bad, restart: false, failed: true}},
		},
		{
			name: "start failures use attempts and wait the delay", jobType: structs.JobTypeBatch,
			policy: policy(1, time.Hour, 2*time.Second, structs.RestartModeFail),
			steps: []step{
				{at: 0, startEr: true, restart: true, delay: 2 * time.Second},
				{at: 3 * time.Second, startEr: true, restart: false, failed: true},
			},
		},
		{
			name: "a lost exit counts as a failure", jobType: structs.JobTypeBatch,
			policy: policy(0, time.Hour, time.Second, structs.RestartModeFail),
			steps:  []step{{at: 0, exit: &driver.ExitResult{Err: errors.New("gone")}, restart: false, failed: true}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRestartTracker(tc.policy, tc.jobType)
			r.jitter = func(time.Duration) time.Duration { return 0 }
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				var d restartDecision
				if s.startEr {
					d = r.onStartFailure(errors.New("pull failed"), now)
				} else {
					d = r.onExit(s.exit, now)
				}
				require.Equal(t, s.restart, d.restart, "step %d: %s", i, d.reason)
				require.Equal(t, s.failed, d.failed, "step %d: %s", i, d.reason)
				if s.restart {
					require.Equal(t, s.delay, d.delay, "step %d: %s", i, d.reason)
				}
				require.NotEmpty(t, d.reason)
			}
		})
	}
}

func TestRestartTracker_JitterOnlyAdds(t *testing.T) {
	r := newRestartTracker(&structs.RestartPolicy{Attempts: 100, Interval: structs.Duration(time.Hour), Delay: structs.Duration(time.Second), Mode: structs.RestartModeFail}, structs.JobTypeService)
	now := time.Now()
	for range 50 {
		d := r.onExit(&driver.ExitResult{ExitCode: 1}, now)
		require.True(t, d.restart)
		require.GreaterOrEqual(t, d.delay, time.Second)
		require.LessOrEqual(t, d.delay, time.Second+time.Second/4)
	}
}

func TestAllocClientStatus(t *testing.T) {
	ts := func(state string, failed bool) *structs.TaskState {
		return &structs.TaskState{State: state, Failed: failed}
	}
	cases := []struct {
		name   string
		states map[string]*structs.TaskState
		want   string
	}{
		{"no tasks", nil, structs.AllocClientPending},
		{"all pending", map[string]*structs.TaskState{"a": ts(structs.TaskStatePending, false)}, structs.AllocClientPending},
		{"one running", map[string]*structs.TaskState{"a": ts(structs.TaskStateRunning, false), "b": ts(structs.TaskStatePending, false)}, structs.AllocClientRunning},
		{"running and done", map[string]*structs.TaskState{"a": ts(structs.TaskStateRunning, false), "b": ts(structs.TaskStateDead, false)}, structs.AllocClientRunning},
		{"all done", map[string]*structs.TaskState{"a": ts(structs.TaskStateDead, false), "b": ts(structs.TaskStateDead, false)}, structs.AllocClientComplete},
		{"one done one pending", map[string]*structs.TaskState{"a": ts(structs.TaskStateDead, false), "b": ts(structs.TaskStatePending, false)}, structs.AllocClientPending},
		{"a failure wins", map[string]*structs.TaskState{"a": ts(structs.TaskStateRunning, false), "b": ts(structs.TaskStateDead, true)}, structs.AllocClientFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, desc := allocClientStatus(tc.states)
			require.Equal(t, tc.want, got)
			require.NotEmpty(t, desc)
		})
	}
}

func TestEnvHelpers(t *testing.T) {
	require.Equal(t, "3", allocIndex("web.frontend[3]"))
	require.Equal(t, "0", allocIndex("odd"))
	require.Equal(t, "0b6a1d4e", allocHostname("0b6a1d4e-8a2b-4f0e-9c1d-2e3f4a5b6c7d"))
	require.Equal(t, "http_admin", envName("http-admin"))
}
