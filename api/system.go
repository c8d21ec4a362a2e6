package api

import (
	"context"
	"net/http"
)

// System is for cluster-wide maintenance.
type System struct{ c *Client }

// System returns the system endpoints.
func (c *Client) System() *System { return &System{c: c} }

// GarbageCollect makes the leader remove every finished evaluation,
// allocation and stopped job, and every down node with nothing on it,
// now instead of after the collection thresholds.
func (s *System) GarbageCollect(ctx context.Context) error {
	return s.c.write(ctx, s.c.newRequest(http.MethodPut, "/system/gc"), nil, nil)
}
