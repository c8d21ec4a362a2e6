package server

import (
	"github.com/hashicorp/go-memdb"

	"github.com/drover-sh/drover/fsm"
	"github.com/drover-sh/drover/server/pool"
	"github.com/drover-sh/drover/structs"
)

// Eval is the RPC endpoint for evaluations.
type Eval struct{ srv *Server }

// GetEval reads one evaluation; Eval is nil when it does not exist.
func (e *Eval) GetEval(args *structs.EvalSpecificRequest, reply *structs.SingleEvalResponse) error {
	if done, err := e.srv.forwardRead("Eval.GetEval", &args.QueryOptions, args, reply); done {
		return pool.EncodeError(err)
	}
	return pool.EncodeError(e.srv.blockingRPC(&args.QueryOptions, &reply.QueryMeta,
		func(ws memdb.WatchSet, snap *fsm.StateSnapshot) (uint64, error) {
			eval, err := snap.EvalByID(ws, args.EvalID)
			if err != nil {
				return 0, err
			}
			reply.Eval = eval
			if eval != nil {
				return maxIndex(eval.ModifyIndex), nil
			}
			return maxIndex(snap.Index("evals")), nil
		}))
}

// List lists evaluations, by ID prefix, optionally of one job or status.
func (e *Eval) List(args *structs.EvalListRequest, reply *structs.EvalListResponse) error {
	if done, err := e.srv.forwardRead("Eval.List", &args.QueryOptions, args, reply); done {
		return pool.EncodeError(err)
	}
	ns := namespaceOf(args.Namespace)
	return pool.EncodeError(e.srv.blockingRPC(&args.QueryOptions, &reply.QueryMeta,
		func(ws memdb.WatchSet, snap *fsm.StateSnapshot) (uint64, error) {
			var evals []*structs.Evaluation
			var err error
			if args.JobID != "" {
				evals, err = snap.EvalsByJob(ws, ns, args.JobID)
			} else {
				evals, err = snap.EvalsByPrefix(ws, ns, args.Prefix)
			}
			if err != nil {
				return 0, err
			}
			reply.Evals = reply.Evals[:0]
			for _, ev := range evals {
				if args.Status != "" && ev.Status != args.Status {
					continue
				}
				if args.JobID != "" && args.Prefix != "" && !hasPrefix(ev.ID, args.Prefix) {
					continue
				}
				reply.Evals = append(reply.Evals, ev)
			}
			return maxIndex(snap.Index("evals")), nil
		}))
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }
