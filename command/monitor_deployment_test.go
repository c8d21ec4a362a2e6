package command

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/api"
	"github.com/drover-sh/drover/structs"
)

const runDeploymentID = "66666666-aaaa-4bbb-8ccc-000000000006"

// rollout serves the deployment of the registered version (job modify
// index 50): running with 1 of 2 healthy on the first read, then ended
// with final, at index 21.
func rollout(t *testing.T, f *fakeAPI, final string, desc string) *atomic.Int32 {
	dep := func(status string, healthy, unhealthy int) *structs.Deployment {
		return &structs.Deployment{ID: runDeploymentID, Namespace: "default", JobID: "web", JobVersion: 2, JobModifyIndex: 50,
			Status: status, StatusDescription: desc, ModifyIndex: 20,
			TaskGroups: map[string]*structs.DeploymentState{"frontend": {DesiredTotal: 2, PlacedAllocs: 2, HealthyAllocs: healthy, UnhealthyAllocs: unhealthy}}}
	}
	f.reply("GET /v1/deployments", []*structs.Deployment{
		{ID: "77777777-aaaa-4bbb-8ccc-000000000007", JobID: "web", JobModifyIndex: 12, Status: structs.DeploymentStatusSuccessful},
		dep(structs.DeploymentStatusRunning, 1, 0),
	})
	var calls atomic.Int32
	f.handle("GET /v1/deployment/"+runDeploymentID, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if got := r.URL.Query().Get("index"); got != "20" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "index " + got + ", want 20", "code": "invalid"})
			return
		}
		d := dep(final, 2, 0)
		if final == structs.DeploymentStatusFailed {
			d = dep(final, 1, 1)
		}
		d.ModifyIndex = 21
		w.Header().Set(api.HeaderIndex, strconv.Itoa(21))
		writeJSON(w, http.StatusOK, d)
	})
	return &calls
}

func TestJobRun_FollowsTheDeployment(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("PUT /v1/jobs", registered(2))
	evalFinished(f, nil)
	calls := rollout(t, f, structs.DeploymentStatusSuccessful, "")
	r := run(t, "job", "run", writeFile(t, "web.yaml", webYAML))
	requireOK(t, r)
	require.Contains(t, r.stdout, lines(
		`==> Evaluation "44444444" finished with status "complete"`,
		`==> Monitoring deployment "66666666"`,
		`    Deployment "66666666" running; group "frontend": desired 2, placed 2, healthy 1, unhealthy 0`,
		`    Deployment "66666666" successful; group "frontend": desired 2, placed 2, healthy 2, unhealthy 0`,
		`==> Deployment "66666666" successful`,
	))
	require.EqualValues(t, 1, calls.Load())
}

func TestJobRun_FailedDeploymentExits2(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("PUT /v1/jobs", registered(2))
	evalFinished(f, nil)
	rollout(t, f, structs.DeploymentStatusFailed, "failed because allocation 5b is unhealthy; rolling back to job version 1")
	r := run(t, "job", "run", writeFile(t, "web.yaml", webYAML))
	require.Equal(t, 2, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	require.Contains(t, r.stdout, lines(
		`    Deployment "66666666" failed; group "frontend": desired 2, placed 2, healthy 1, unhealthy 1`,
		`==> Deployment "66666666" failed: failed because allocation 5b is unhealthy; rolling back to job version 1`,
	))
}

func TestJobRun_DetachDoesNotFollow(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("PUT /v1/jobs", registered(2))
	calls := rollout(t, f, structs.DeploymentStatusSuccessful, "")
	r := run(t, "job", "run", "-detach", writeFile(t, "web.yaml", webYAML))
	requireOK(t, r)
	require.Equal(t, "44444444-aaaa-4bbb-8ccc-000000000004\n", r.stdout)
	require.Zero(t, calls.Load())
}

func TestJobRun_StopsWhereAPromotionIsAwaited(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("PUT /v1/jobs", registered(2))
	evalFinished(f, nil)
	calls := rollout(t, f, structs.DeploymentStatusRunning, structs.DeploymentDescAwaitingPromotion)
	r := run(t, "job", "run", writeFile(t, "web.yaml", webYAML))
	requireOK(t, r)
	require.Contains(t, r.stdout, lines(
		`==> Monitoring deployment "66666666"`,
		`    Deployment "66666666" running; group "frontend": desired 2, placed 2, healthy 1, unhealthy 0`,
		`==> Deployment "66666666" waits for its canaries to be promoted: drover deployment promote 66666666`,
	))
	require.Zero(t, calls.Load(), "nothing to wait for")
}
