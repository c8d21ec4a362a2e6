package server

import (
	"time"

	"github.com/drover-sh/drover/server/pool"
	"github.com/drover-sh/drover/structs"
)

// System is the RPC endpoint for cluster-wide maintenance.
type System struct{ srv *Server }

// GarbageCollect removes everything finished now, whatever its age: what
// the periodic collection would remove once the thresholds passed.
func (s *System) GarbageCollect(args *structs.GenericRequest, reply *structs.GenericResponse) error {
	if done, err := s.srv.forwardWrite("System.GarbageCollect", args, reply); done {
		return pool.EncodeError(err)
	}
	c := &collector{srv: s.srv}
	if _, err := c.collect(time.Now(), gcThresholds{}); err != nil {
		return pool.EncodeError(err)
	}
	reply.Index = s.srv.fsm.State().LatestIndex()
	return nil
}
