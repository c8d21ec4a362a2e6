package fsm

import (
	"fmt"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/drover-sh/drover/structs"
)

// FSM is the Raft state machine: it applies committed entries to the state
// store and streams the store into and out of Raft snapshots.
type FSM struct {
	logger hclog.Logger
	// state is swapped whole by Restore; readers always load it.
	state atomic.Pointer[StateStore]
	// batchBytes bounds the entries sharing one transaction in
	// ApplyBatch (maxBatchBytes; tests lower it).
	batchBytes int
}

var _ raft.FSM = (*FSM)(nil)

// New returns an FSM over an empty store.
func New(logger hclog.Logger) (*FSM, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	store, err := NewStateStore()
	if err != nil {
		return nil, err
	}
	f := &FSM{logger: logger.Named("fsm"), batchBytes: maxBatchBytes}
	f.state.Store(store)
	return f, nil
}

// State returns the current store. Hold it only for one operation: a
// Restore replaces it (and closes its AbandonCh).
func (f *FSM) State() *StateStore { return f.state.Load() }

// applyFn applies one entry's body at a Raft index and returns nil or an
// error, which Raft hands back to the proposer.
type applyFn func(f *FSM, index uint64, body []byte) interface{}

// appliers is indexed by message type; the flag bit is never part of a
// registered type.
var appliers [structs.IgnoreUnknownTypeFlag]applyFn

// register adds the handler of one message type. Called from init only, so
// a duplicate is a programming error.
func register(t structs.MessageType, fn applyFn) {
	if t >= structs.IgnoreUnknownTypeFlag {
		panic(fmt.Sprintf("fsm: message type %d uses the ignore flag bit", t))
	}
	if appliers[t] != nil {
		panic(fmt.Sprintf("fsm: message type %d registered twice", t))
	}
	appliers[t] = fn
}

func init() {
	register(structs.JobRegisterRequestType, (*FSM).applyJobRegister)
	register(structs.JobDeregisterRequestType, (*FSM).applyJobDeregister)
	register(structs.EvalUpdateRequestType, (*FSM).applyEvalUpdate)
	register(structs.EvalDeleteRequestType, (*FSM).applyEvalDelete)
	register(structs.NodeRegisterRequestType, (*FSM).applyNodeRegister)
	register(structs.NodeDeregisterRequestType, (*FSM).applyNodeDeregister)
	register(structs.NodeUpdateStatusRequestType, (*FSM).applyNodeUpdateStatus)
	register(structs.NodeUpdateDrainRequestType, (*FSM).applyNodeUpdateDrain)
	register(structs.NodeUpdateEligibilityRequestType, (*FSM).applyNodeUpdateEligibility)
	register(structs.AllocClientUpdateRequestType, (*FSM).applyAllocClientUpdate)
	register(structs.ApplyPlanResultsRequestType, (*FSM).applyPlanResults)
	register(structs.AllocUpdateDesiredTransitionRequestType, (*FSM).applyAllocDesiredTransition)
	register(structs.AllocGCRequestType, (*FSM).applyAllocGC)
	register(structs.JobBatchDeregisterRequestType, (*FSM).applyJobBatchDeregister)
	register(structs.ServiceRegistrationUpsertRequestType, (*FSM).applyServiceUpsert)
	register(structs.ServiceRegistrationDeleteRequestType, (*FSM).applyServiceDelete)
}

// Apply writes one committed entry to the store. It must be deterministic:
// every server applies the same entries and must end with the same store,
// so everything that varies (time, IDs) travels inside the entry.
func (f *FSM) Apply(l *raft.Log) interface{} {
	if len(l.Data) == 0 {
		return fmt.Errorf("raft entry at index %d is empty", l.Index)
	}
	t := structs.MessageType(l.Data[0])
	ignorable := t&structs.IgnoreUnknownTypeFlag != 0
	t &^= structs.IgnoreUnknownTypeFlag
	if fn := appliers[t]; fn != nil {
		return fn(f, l.Index, l.Data[1:])
	}
	if ignorable {
		f.logger.Warn("ignoring unknown message type", "type", uint8(t), "index", l.Index)
		return nil
	}
	// Skipping an entry other servers apply would silently fork the
	// store; stopping makes an upgrade mistake loud instead.
	panic(fmt.Sprintf("fsm: unknown message type %d at raft index %d: this server is older than the entry; upgrade it", t, l.Index))
}

func (f *FSM) applyJobRegister(index uint64, body []byte) interface{} {
	var req structs.JobRegisterRequest
	if err := structs.Decode(body, &req); err != nil {
		return fmt.Errorf("decoding job register request at index %d: %w", index, err)
	}
	if req.Job == nil {
		return structs.NewError(structs.ErrInvalid, "job register request at index %d has no job", index)
	}
	return f.State().upsertJob(index, jobUpsert{
		job:            req.Job,
		eval:           req.Eval,
		submitTime:     req.SubmitTime,
		enforceIndex:   req.EnforceIndex,
		jobModifyIndex: req.JobModifyIndex,
	})
}

func (f *FSM) applyJobDeregister(index uint64, body []byte) interface{} {
	var req structs.JobDeregisterRequest
	if err := structs.Decode(body, &req); err != nil {
		return fmt.Errorf("decoding job deregister request at index %d: %w", index, err)
	}
	ns := req.Namespace
	if ns == "" {
		ns = structs.DefaultNamespace
	}
	return f.State().deregisterJob(index, req.SubmitTime, ns, req.JobID, req.Purge, req.Eval)
}

func (f *FSM) applyEvalUpdate(index uint64, body []byte) interface{} {
	var req structs.EvalUpdateRequest
	if err := structs.Decode(body, &req); err != nil {
		return fmt.Errorf("decoding eval update request at index %d: %w", index, err)
	}
	return f.State().upsertEvals(index, req.Evals)
}

func (f *FSM) applyEvalDelete(index uint64, body []byte) interface{} {
	var req structs.EvalDeleteRequest
	if err := structs.Decode(body, &req); err != nil {
		return fmt.Errorf("decoding eval delete request at index %d: %w", index, err)
	}
	return f.State().DeleteEvals(index, req.EvalIDs)
}
