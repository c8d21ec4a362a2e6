package fsm

import (
	"fmt"

	"github.com/drover-sh/drover/structs"
)

// The appliers of node, allocation and plan entries. Each decodes its
// entry and makes one store call; decoded objects are fresh, so the store
// takes ownership of them without copying.

// decode decodes an entry body, naming the entry in the error.
func decode(what string, index uint64, body []byte, out any) error {
	if err := structs.Decode(body, out); err != nil {
		return fmt.Errorf("decoding %s request at index %d: %w", what, index, err)
	}
	return nil
}

func (f *FSM) applyNodeRegister(index uint64, body []byte) interface{} {
	var req structs.NodeRegisterRequest
	if err := decode("node register", index, body, &req); err != nil {
		return err
	}
	if req.Node == nil {
		return structs.NewError(structs.ErrInvalid, "node register request at index %d has no node", index)
	}
	return f.State().upsertNode(index, req.Node)
}

func (f *FSM) applyNodeDeregister(index uint64, body []byte) interface{} {
	var req structs.NodeDeregisterRequest
	if err := decode("node deregister", index, body, &req); err != nil {
		return err
	}
	return f.State().DeleteNode(index, req.NodeIDs)
}

func (f *FSM) applyNodeUpdateStatus(index uint64, body []byte) interface{} {
	var req structs.NodeUpdateStatusRequest
	if err := decode("node status", index, body, &req); err != nil {
		return err
	}
	return f.State().updateNodes(index, req.NodeIDs, req.Evals, func(n *structs.Node) error {
		n.Status = req.Status
		n.StatusUpdatedAt = req.UpdatedAt
		return nil
	})
}

func (f *FSM) applyNodeUpdateDrain(index uint64, body []byte) interface{} {
	var req structs.NodeUpdateDrainRequest
	if err := decode("node drain", index, body, &req); err != nil {
		return err
	}
	return f.State().UpdateNodeDrain(index, req.NodeID, req.DrainStrategy, req.MarkEligible, req.UpdatedAt, req.Evals)
}

func (f *FSM) applyNodeUpdateEligibility(index uint64, body []byte) interface{} {
	var req structs.NodeUpdateEligibilityRequest
	if err := decode("node eligibility", index, body, &req); err != nil {
		return err
	}
	return f.State().UpdateNodeEligibility(index, req.NodeID, req.Eligibility, req.UpdatedAt, req.Evals)
}

func (f *FSM) applyAllocClientUpdate(index uint64, body []byte) interface{} {
	var req structs.AllocUpdateRequest
	if err := decode("allocation client update", index, body, &req); err != nil {
		return err
	}
	return f.State().updateAllocsFromClient(index, req.Alloc, req.Evals)
}

func (f *FSM) applyPlanResults(index uint64, body []byte) interface{} {
	var req structs.ApplyPlanResultsRequest
	if err := decode("plan results", index, body, &req); err != nil {
		return err
	}
	return f.State().upsertPlanResults(index, &req)
}

func (f *FSM) applyAllocDesiredTransition(index uint64, body []byte) interface{} {
	var req structs.AllocUpdateDesiredTransitionRequest
	if err := decode("allocation desired transition", index, body, &req); err != nil {
		return err
	}
	return f.State().updateAllocsDesiredTransitions(index, req.Allocs, req.Evals)
}

func (f *FSM) applyAllocGC(index uint64, body []byte) interface{} {
	var req structs.AllocGCRequest
	if err := decode("allocation gc", index, body, &req); err != nil {
		return err
	}
	return f.State().DeleteAllocs(index, req.AllocIDs)
}

func (f *FSM) applyJobBatchDeregister(index uint64, body []byte) interface{} {
	var req structs.JobBatchDeregisterRequest
	if err := decode("job batch deregister", index, body, &req); err != nil {
		return err
	}
	return f.State().PurgeJobs(index, req.Jobs)
}
