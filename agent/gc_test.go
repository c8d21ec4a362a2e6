package agent

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMemoryLimitFollowsTheLiveHeap(t *testing.T) {
	require.Equal(t, int64(1<<30), memoryLimitFor(0))
	require.Equal(t, int64(1<<30), memoryLimitFor(300<<20), "a small store keeps the floor")
	require.Equal(t, int64(3<<30), memoryLimitFor(1536<<20), "a big store gets twice its live heap")
}
