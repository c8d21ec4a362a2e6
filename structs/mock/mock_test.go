package mock

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The fixtures are only useful if they are valid: a test that changes one
// field must fail for that field, not for the fixture.
func TestJobsAreValid(t *testing.T) {
	require.NoError(t, Job().Validate())
	require.NoError(t, BatchJob().Validate())
	require.NoError(t, SystemJob().Validate())
}

func TestFixturesAreFresh(t *testing.T) {
	require.NotEqual(t, Job().ID, Job().ID)
	require.NotEqual(t, Node().ID, Node().ID)
	a := Alloc()
	require.Equal(t, a.Job.ID, a.JobID)
	require.Equal(t, 500, a.Resources.Tasks["server"].CPU)
}
