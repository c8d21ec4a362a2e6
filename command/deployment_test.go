package command

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

// rollingYAML asks for auto_revert, so its first placement starts a
// deployment; with a node that runs nothing it stays running.
const rollingYAML = `id: web
type: service
update: {max_parallel: 1, min_healthy_time: 1s, auto_revert: true}
groups:
  - name: frontend
    count: 2
    tasks:
      - name: server
        image: busybox
        resources: {cpu: 100, memory: 64}
`

func TestCommands_DeploymentsAgainstARealAgent(t *testing.T) {
	d := startDevAgent(t)
	d.registerNode()
	path := writeFile(t, "web.yaml", rollingYAML)
	// Detached: nothing runs the allocations, so the deployment does not
	// end and job run would follow it.
	requireOK(t, run(t, "job", "run", "-detach", path))

	var deps []*structs.Deployment
	var r result
	require.Eventually(t, func() bool {
		r = run(t, "deployment", "list", "-json")
		requireOK(t, r)
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &deps))
		return len(deps) == 1 && deps[0].TaskGroups["frontend"].PlacedAllocs == 2
	}, 10*time.Second, 20*time.Millisecond, "no deployment: %s", r.stdout)
	dep := deps[0]
	require.Equal(t, "web", dep.JobID)
	require.Equal(t, structs.DeploymentStatusRunning, dep.Status)
	short := structs.ShortID(dep.ID)

	r = run(t, "deployment", "list")
	requireOK(t, r)
	require.Contains(t, r.stdout, short+"  web     0            running")

	r = run(t, "deployment", "status", dep.ID[:6])
	requireOK(t, r)
	require.Contains(t, r.stdout, "ID          = "+short+"\n")
	require.Contains(t, r.stdout, "Status      = running\n")
	require.Contains(t, r.stdout, "Task Group  Auto Revert  Desired  Placed  Healthy  Unhealthy  Progress Deadline\n")
	require.Contains(t, r.stdout, "frontend    true         2        2       0        0")

	r = run(t, "job", "status", "web")
	requireOK(t, r)
	require.Contains(t, r.stdout, "Latest Deployment\n")
	require.Contains(t, r.stdout, "frontend    true         2        2       0        0")

	// Bad input: an unknown deployment, a promote without canaries.
	r = run(t, "deployment", "status", "ffffffff")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, `no deployment with ID or ID prefix "ffffffff"`)
	r = run(t, "deployment", "fail", "ffffffff")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, `no deployment with ID or ID prefix "ffffffff"`)
	base := "http://" + d.agent.HTTPAddr() + "/v1/deployment/"
	require.Equal(t, http.StatusNotFound, httpStatus(t, http.MethodGet, base+"ffffffff"))
	require.Equal(t, http.StatusBadRequest, httpStatus(t, http.MethodPut, base+dep.ID+"/promote"))
	r = run(t, "deployment", "promote", short)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "deployment "+dep.ID+" has no canaries to promote")

	// Fail: no stable version yet, so nothing to roll back to.
	r = run(t, "deployment", "fail", short)
	requireOK(t, r)
	require.Contains(t, r.stdout, "Deployment \""+short+"\" failed; evaluation")
	r = run(t, "deployment", "status", "-json", short)
	requireOK(t, r)
	var failed structs.Deployment
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &failed))
	require.Equal(t, structs.DeploymentStatusFailed, failed.Status)
	require.Equal(t, "failed by a user; no stable job version to roll back to", failed.StatusDescription)
	r = run(t, "deployment", "fail", short)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "deployment "+dep.ID+" is not active: it is failed")
}

func httpStatus(t *testing.T, method, url string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func TestCommands_JobRevertAgainstARealAgent(t *testing.T) {
	d := startDevAgent(t)
	d.registerNode()
	requireOK(t, run(t, "job", "run", writeFile(t, "web.yaml", webYAML)))
	requireOK(t, run(t, "job", "run", writeFile(t, "web2.yaml", strings.Replace(webYAML, "count: 1", "count: 2", 1))))

	r := run(t, "job", "revert", "web", "0")
	requireOK(t, r)
	require.Contains(t, r.stdout, `Job "web" reverted to the spec of version 0 as version 2; evaluation`)
	job, err := d.agent.Server().State().JobByID(nil, "default", "web")
	require.NoError(t, err)
	require.Equal(t, uint64(2), job.Version)
	require.Equal(t, 1, job.Groups[0].Count)

	r = run(t, "job", "history", "web")
	requireOK(t, r)
	require.Contains(t, r.stdout, "Version  Stable  Stop")

	r = run(t, "job", "revert", "web", "2")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, `job "web" is already at version 2`)
	r = run(t, "job", "revert", "web", "9")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, `job "web" has no version 9`)
	r = run(t, "job", "revert", "web", "x")
	require.NotEqual(t, 0, r.code)
	require.Contains(t, r.stderr, `version must be a non-negative integer, got "x"`)
}
