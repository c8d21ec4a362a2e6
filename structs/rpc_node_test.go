package structs

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNodeClientAllocsResponse_Delta(t *testing.T) {
	alloc := func(id string, idx uint64) *Allocation { return &Allocation{ID: id, AllocModifyIndex: idx} }
	resp := &NodeClientAllocsResponse{
		Allocs: map[string]uint64{"held": 5, "moved": 9, "new": 9, "uncarried": 8, "stale-copy": 9},
		Changed: []*Allocation{
			alloc("moved", 9),
			alloc("new", 9),
			alloc("held", 5),       // carried although the client holds it at 5: not applied again
			alloc("stale-copy", 7), // disagrees with the list: fetched instead
		},
	}
	seen := map[string]uint64{"held": 5, "moved": 4, "uncarried": 3, "stale-copy": 2, "gone": 1}
	changed, fetch := resp.Delta(seen)
	var ids []string
	for _, a := range changed {
		ids = append(ids, a.ID)
	}
	require.ElementsMatch(t, []string{"moved", "new"}, ids)
	require.ElementsMatch(t, []string{"uncarried", "stale-copy"}, fetch)

	// An answer from a server that carries nothing: everything moved is
	// fetched, as before Changed existed.
	old := &NodeClientAllocsResponse{Allocs: resp.Allocs}
	changed, fetch = old.Delta(seen)
	require.Empty(t, changed)
	require.ElementsMatch(t, []string{"moved", "new", "uncarried", "stale-copy"}, fetch)

	// Nothing moved: nothing to do.
	changed, fetch = (&NodeClientAllocsResponse{Allocs: map[string]uint64{"held": 5}}).Delta(seen)
	require.Empty(t, changed)
	require.Empty(t, fetch)
}

// Sync applies what is carried, fetches the rest at the answer's index,
// records both in seen and forgets what the answer no longer lists; a
// failed fetch leaves seen alone.
func TestNodeClientAllocsResponse_Sync(t *testing.T) {
	alloc := func(id string, idx uint64) *Allocation { return &Allocation{ID: id, AllocModifyIndex: idx} }
	resp := &NodeClientAllocsResponse{
		Allocs:    map[string]uint64{"held": 5, "moved": 9, "uncarried": 8},
		Changed:   []*Allocation{alloc("moved", 9)},
		QueryMeta: QueryMeta{Index: 9},
	}
	seen := map[string]uint64{"held": 5, "moved": 4, "uncarried": 3, "gone": 1}

	failed := errors.New("no server")
	_, err := resp.Sync(seen, func(*AllocsGetRequest) ([]*Allocation, error) { return nil, failed })
	require.ErrorIs(t, err, failed)
	require.Equal(t, map[string]uint64{"held": 5, "moved": 4, "uncarried": 3, "gone": 1}, seen)

	var asked *AllocsGetRequest
	changed, err := resp.Sync(seen, func(req *AllocsGetRequest) ([]*Allocation, error) {
		asked = req
		return []*Allocation{alloc("uncarried", 8)}, nil
	})
	require.NoError(t, err)
	require.Equal(t, []string{"uncarried"}, asked.AllocIDs)
	require.Equal(t, uint64(9), asked.MinQueryIndex)
	require.True(t, asked.AllowStale)
	var ids []string
	for _, a := range changed {
		ids = append(ids, a.ID)
	}
	require.ElementsMatch(t, []string{"moved", "uncarried"}, ids)
	require.Equal(t, map[string]uint64{"held": 5, "moved": 9, "uncarried": 8}, seen)
}
