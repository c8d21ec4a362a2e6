package server

import (
	"context"
	"time"
)

// leaderService is a loop that runs on the leader only, from the moment
// its election barrier passes until leadership ends (ctx cancelled). run
// must return soon after ctx is done.
type leaderService struct {
	name string
	run  func(ctx context.Context)
}

// leaderServices lists what the leader runs, in start order. Each entry
// rebuilds its state from the store when it starts, so a new leader picks
// up where the old one stopped.
func (s *Server) leaderServices() []leaderService {
	return []leaderService{
		{name: "heartbeats", run: s.heartbeats.run},
		{name: "drainer", run: (&drainer{srv: s, now: time.Now}).run},
		{name: "gc", run: (&collector{srv: s}).run},
		{name: "eval-pipeline", run: s.runEvalPipeline},
		{name: "deployments", run: newDeploymentWatcher(s).run},
	}
}
