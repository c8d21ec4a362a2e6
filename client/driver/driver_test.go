package driver

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTaskID(t *testing.T) {
	alloc := "0b6a1d4e-8a2b-4f0e-9c1d-2e3f4a5b6c7d"
	require.Equal(t, alloc+"-web", TaskID(alloc, "web"))

	valid := regexp.MustCompile(`^[A-Za-z0-9_.-]{1,76}$`)
	long1 := strings.Repeat("a", 60) + "x"
	long2 := strings.Repeat("a", 60) + "y"
	id1, id2 := TaskID(alloc, long1), TaskID(alloc, long2)
	require.Regexp(t, valid, id1)
	require.Len(t, id1, 76)
	require.NotEqual(t, id1, id2, "long names that share a prefix stay distinct")
	require.True(t, strings.HasPrefix(id1, alloc+"-"))
}
