package server

import (
	"github.com/hashicorp/go-memdb"

	"github.com/drover-sh/drover/fsm"
	"github.com/drover-sh/drover/structs"
)

// registerEndpoints registers every RPC endpoint under its name.
func (s *Server) registerEndpoints() error {
	endpoints := map[string]any{
		"Job":        &Job{srv: s},
		"Eval":       &Eval{srv: s},
		"Status":     &Status{srv: s},
		"Operator":   &Operator{srv: s},
		"Node":       &Node{srv: s},
		"Alloc":      &Alloc{srv: s},
		"System":     &System{srv: s},
		"Service":    &Service{srv: s},
		"Deployment": &Deployment{srv: s},
	}
	for name, e := range endpoints {
		if err := s.rpcServer.RegisterName(name, e); err != nil {
			return err
		}
	}
	return nil
}

// queryFn is what a read endpoint runs against a store snapshot; it
// returns the index the answer is as new as.
type queryFn func(ws memdb.WatchSet, snap *fsm.StateSnapshot) (uint64, error)

// blockingRPC runs a read, blocking while q asks for a newer index than
// the store has, and fills the response metadata.
func (s *Server) blockingRPC(q *structs.QueryOptions, m *structs.QueryMeta, fn queryFn) error {
	idx, err := s.fsm.State().BlockingQuery(s.shutdownCtx, q.MinQueryIndex, q.MaxQueryTime, fsm.QueryFn(fn))
	if err != nil {
		if s.isShutdown() {
			return structs.NewError(structs.ErrUnavailable, "server is shutting down")
		}
		return err
	}
	m.Index = idx
	s.setQueryMeta(m)
	return nil
}

// namespaceOf returns the namespace a request names, or the default one.
func namespaceOf(ns string) string {
	if ns == "" {
		return structs.DefaultNamespace
	}
	return ns
}

// maxIndex returns the largest of the given indexes, and at least 1 so a
// blocking query never spins on index 0.
func maxIndex(idx ...uint64) uint64 {
	var m uint64 = 1
	for _, i := range idx {
		if i > m {
			m = i
		}
	}
	return m
}
