package gossip

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

// A graceful leave is told apart from a failure: the servers act on a
// failure (a client's heartbeat timer is cut short), not on a leave.
func TestPool_LeaveIsNotAFailure(t *testing.T) {
	a := testPool(t, "a", structs.RoleServer, "", 0)
	var mu sync.Mutex
	events := map[string]string{}
	a.Subscribe(func(ev structs.MemberEvent) {
		mu.Lock()
		events[ev.Member.Name] = ev.Type
		mu.Unlock()
	})
	b := testPool(t, "b", structs.RoleClient, "", 0)
	c := testPool(t, "c", structs.RoleClient, "", 0)
	for _, p := range []*Pool{b, c} {
		_, err := p.Join([]string{addr(a)})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return a.NumAlive() == 3 }, 10*time.Second, 10*time.Millisecond)

	status := func(name string) string {
		for _, m := range a.Members() {
			if m.Name == name {
				return m.Status
			}
		}
		return ""
	}
	event := func(name string) string {
		mu.Lock()
		defer mu.Unlock()
		return events[name]
	}

	require.NoError(t, b.Leave(2*time.Second))
	require.Eventually(t, func() bool {
		return status("b") == structs.MemberLeft && event("b") == structs.MemberEventLeave
	}, 10*time.Second, 10*time.Millisecond, "b left: status %q, last event %q", status("b"), event("b"))

	c.Shutdown() // as a crash: no goodbye
	require.Eventually(t, func() bool {
		return status("c") == structs.MemberDead && event("c") == structs.MemberEventFailed
	}, 20*time.Second, 20*time.Millisecond, "c failed: status %q, last event %q", status("c"), event("c"))
	require.Equal(t, structs.MemberLeft, status("b"))
}
