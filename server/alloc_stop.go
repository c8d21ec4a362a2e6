package server

import (
	"time"

	"github.com/drover-sh/drover/server/pool"
	"github.com/drover-sh/drover/structs"
)

// Stop stops one allocation and has the scheduler replace it elsewhere if
// it can, as Nomad's `alloc stop` does: the allocation is flagged to
// migrate and an evaluation of its job is written in the same entry.
func (a *Alloc) Stop(args *structs.AllocStopRequest, reply *structs.AllocStopResponse) error {
	if done, err := a.srv.forwardWrite("Alloc.Stop", args, reply); done {
		return pool.EncodeError(err)
	}
	return pool.EncodeError(a.stop(args, reply))
}

func (a *Alloc) stop(args *structs.AllocStopRequest, reply *structs.AllocStopResponse) error {
	if args.AllocID == "" {
		return structs.NewError(structs.ErrInvalid, "missing allocation id")
	}
	snap := a.srv.fsm.State()
	alloc, err := snap.AllocByID(nil, args.AllocID)
	if err != nil {
		return err
	}
	if alloc == nil {
		return structs.NewError(structs.ErrNotFound, "allocation %q not found", args.AllocID)
	}
	if alloc.TerminalStatus() {
		return structs.NewError(structs.ErrConflict, "allocation %s is already %s", alloc.ID, terminalWord(alloc))
	}
	job, err := snap.JobByID(nil, alloc.Namespace, alloc.JobID)
	if err != nil {
		return err
	}
	priority, typ := structs.DefaultPriority, structs.JobTypeService
	if job != nil {
		priority, typ = job.Priority, job.Type
	} else if alloc.Job != nil {
		priority, typ = alloc.Job.Priority, alloc.Job.Type
	}
	now := time.Now().UnixNano()
	eval := &structs.Evaluation{
		ID:          structs.GenerateUUID(),
		Namespace:   alloc.Namespace,
		Priority:    priority,
		Type:        typ,
		TriggeredBy: structs.EvalTriggerAllocStop,
		JobID:       alloc.JobID,
		Status:      structs.EvalStatusPending,
		CreateTime:  now,
		ModifyTime:  now,
	}
	req := &structs.AllocUpdateDesiredTransitionRequest{
		Allocs: map[string]*structs.DesiredTransition{alloc.ID: {Migrate: true}},
		Evals:  []*structs.Evaluation{eval},
	}
	_, index, err := a.srv.raftApply(structs.AllocUpdateDesiredTransitionRequestType, req)
	if err != nil {
		return err
	}
	reply.EvalID = eval.ID
	reply.Index = index
	return nil
}

// terminalWord says why an allocation is terminal, for errors.
func terminalWord(a *structs.Allocation) string {
	if a.ClientTerminalStatus() {
		return a.ClientStatus
	}
	return "stopped"
}
