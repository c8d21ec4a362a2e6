package command

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

// hugeYAML asks for more memory than any node has.
const hugeYAML = `id: huge
datacenters: [dc1]
groups:
  - name: web
    count: 1
    tasks:
      - name: server
        image: busybox
        resources: {cpu: 100, memory: 1000000}
`

// An unplaceable job against a dev agent with one registered node: job
// plan, job run and job status all say why, and job run exits 2.
func TestCommands_UnplaceableJobAgainstARealAgent(t *testing.T) {
	d := startDevAgent(t)
	d.registerNode()
	path := writeFile(t, "huge.yaml", hugeYAML)
	reason := "* Resources exhausted on 1 node: memory exhausted on 1 node"

	r := run(t, "job", "plan", path)
	require.Equal(t, 1, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	require.Contains(t, r.stdout, "+ Job: \"huge\"\n")
	require.Contains(t, r.stdout, "+ Task Group: \"web\" (1 create)\n")
	require.Contains(t, r.stdout, "- WARNING: Failed to place all allocations.\n")
	require.Contains(t, r.stdout, "  Task Group \"web\" (failed to place 1 allocation):\n    "+reason+"\n")

	r = run(t, "job", "run", path)
	require.Equal(t, 2, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	require.Contains(t, r.stdout, "finished with status \"complete\" but failed to place all allocations:\n")
	require.Contains(t, r.stdout, "    Task Group \"web\" (failed to place 1 allocation):\n      "+reason+"\n")

	r = run(t, "job", "status", "huge")
	requireOK(t, r)
	require.Contains(t, r.stdout, "Placement Failure\nTask Group \"web\" (failed to place 1 allocation):\n  "+reason+"\n")
	require.Contains(t, r.stdout, "Allocations\nNo allocations placed\n")

	r = run(t, "eval", "list", "-job", "huge")
	requireOK(t, r)
	require.Contains(t, r.stdout, "job-register")
	require.Contains(t, r.stdout, "true", "placement failures column")

	// The same plan again after the run: nothing changes in the spec.
	r = run(t, "job", "plan", path)
	require.Contains(t, r.stdout, "  Job: \"huge\"\n", r.stdout)
}

// A job that fits runs to completion of its evaluation; the node, the
// allocation and the evaluation are then shown by prefix.
func TestCommands_NodesAllocsEvalsAgainstARealAgent(t *testing.T) {
	d := startDevAgent(t)
	node := d.registerNode()
	path := writeFile(t, "web.yaml", webYAML)

	r := run(t, "job", "run", path)
	requireOK(t, r)
	require.Contains(t, r.stdout, "created: node \""+structs.ShortID(node.ID)+"\", group \"frontend\"\n")
	require.Contains(t, r.stdout, "finished with status \"complete\"\n")

	r = run(t, "node", "status")
	requireOK(t, r)
	require.Contains(t, r.stdout, structs.ShortID(node.ID)+"  "+node.Name+"  dc1")

	r = run(t, "node", "status", node.ID[:6])
	requireOK(t, r)
	require.Contains(t, r.stdout, "Name               = "+node.Name+"\n")
	require.Contains(t, r.stdout, "web     frontend")

	r = run(t, "job", "status", "web")
	requireOK(t, r)
	require.NotContains(t, r.stdout, "Placement Failure")
	allocLine := r.stdout[strings.Index(r.stdout, "\nAllocations\n"):]
	allocID := strings.Fields(strings.Split(allocLine, "\n")[3])[0]
	require.Len(t, allocID, 8)

	r = run(t, "alloc", "status", allocID)
	requireOK(t, r)
	require.Contains(t, r.stdout, "Job ID              = web\n")
	require.Contains(t, r.stdout, "Node ID             = "+structs.ShortID(node.ID)+"\n")

	r = run(t, "node", "eligibility", "-disable", node.ID[:8])
	requireOK(t, r)
	r = run(t, "node", "status", "-json")
	requireOK(t, r)
	require.Contains(t, r.stdout, `"scheduling_eligibility": "ineligible"`)

	r = run(t, "node", "drain", "-enable", "-yes", "-deadline", "10m", node.ID[:8])
	requireOK(t, r)
	r = run(t, "node", "status", node.ID)
	requireOK(t, r)
	require.Contains(t, r.stdout, "Drain              = true")
	r = run(t, "node", "drain", "-disable", "-yes", node.ID[:8])
	requireOK(t, r)

	r = run(t, "node", "status", "ffffffff-nope")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "no node with ID or ID prefix")
}
