package server

import (
	"time"

	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

func TestTestCluster_ThreeServersElectAndReplicate(t *testing.T) {
	servers := testCluster(t, 3, nil)
	leader := waitForLeader(t, servers...)
	var resp structs.JobRegisterResponse
	require.NoError(t, leader.RPC("Job.Register", &structs.JobRegisterRequest{Job: mock.Job()}, &resp))
	for _, s := range servers {
		require.Eventually(t, func() bool { return s.State().LatestIndex() >= resp.Index }, 5*time.Second, 10*time.Millisecond)
	}
}
