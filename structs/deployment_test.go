package structs

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDeployment_CountAlloc(t *testing.T) {
	yes, no := true, false
	d := &Deployment{TaskGroups: map[string]*DeploymentState{
		"web": {PlacedAllocs: 9, HealthyAllocs: 9, UnhealthyAllocs: 9, PlacedCanaries: []string{"old"}},
	}}
	allocs := []*Allocation{
		{ID: "a", TaskGroup: "web"},
		{ID: "b", TaskGroup: "web", DeploymentStatus: &AllocDeploymentStatus{Healthy: &yes, Canary: true}},
		{ID: "c", TaskGroup: "web", DeploymentStatus: &AllocDeploymentStatus{Healthy: &no}},
		{ID: "d", TaskGroup: "gone", DeploymentStatus: &AllocDeploymentStatus{Healthy: &no}},
	}

	// Without health: placements and canaries only, health left alone.
	d.ClearCounts(false)
	for _, a := range allocs {
		require.False(t, d.CountAlloc(a, false))
	}
	require.Equal(t, &DeploymentState{PlacedAllocs: 3, HealthyAllocs: 9, UnhealthyAllocs: 9, PlacedCanaries: []string{"b"}}, d.TaskGroups["web"])

	d.ClearCounts(true)
	var unhealthy []string
	for _, a := range allocs {
		if d.CountAlloc(a, true) {
			unhealthy = append(unhealthy, a.ID)
		}
	}
	require.Equal(t, []string{"c"}, unhealthy, "an allocation of a group the deployment lacks is not counted")
	require.Equal(t, &DeploymentState{PlacedAllocs: 3, HealthyAllocs: 1, UnhealthyAllocs: 1, PlacedCanaries: []string{"b"}}, d.TaskGroups["web"])
}
