package structs

import "time"

// QueryOptions are carried by every read RPC.
type QueryOptions struct {
	Region    string
	Namespace string
	// MinQueryIndex makes the read block until the store index passes it
	// (a blocking query), for at most MaxQueryTime.
	MinQueryIndex uint64
	MaxQueryTime  time.Duration
	// AllowStale lets any server answer from its local store without
	// checking with the leader.
	AllowStale bool
	Prefix     string
	AuthToken  string
}

// QueryMeta comes back with every read.
type QueryMeta struct {
	Index       uint64
	LastContact time.Duration
	KnownLeader bool
}

// WriteRequest is carried by every write RPC.
type WriteRequest struct {
	Region    string
	Namespace string
	AuthToken string
}

// WriteMeta comes back with every write: the Raft index it committed at.
type WriteMeta struct {
	Index uint64
}

// Default blocking-query limits.
const (
	DefaultQueryTime = 5 * time.Minute
	MaxQueryTime     = 10 * time.Minute
)

// JobRegisterRequest registers or updates a job. The leader fills Eval and
// SubmitTime before the request becomes a Raft entry, so Apply stays
// deterministic.
type JobRegisterRequest struct {
	Job *Job
	// EnforceIndex makes the write conditional: it succeeds only if the
	// job's current JobModifyIndex equals JobModifyIndex (0: must not exist).
	EnforceIndex   bool
	JobModifyIndex uint64
	Eval           *Evaluation
	SubmitTime     int64
	WriteRequest
}

// JobRegisterResponse is the answer to a registration.
type JobRegisterResponse struct {
	EvalID          string   `json:"eval_id"`
	EvalCreateIndex uint64   `json:"eval_create_index"`
	JobModifyIndex  uint64   `json:"job_modify_index"`
	JobVersion      uint64   `json:"job_version"`
	Warnings        []string `json:"warnings,omitempty"`
	Index           uint64   `json:"index"`
}

// JobDeregisterRequest stops a job, or removes it with Purge.
type JobDeregisterRequest struct {
	JobID      string
	Purge      bool
	Eval       *Evaluation
	SubmitTime int64
	WriteRequest
}

// JobDeregisterResponse is the answer to a stop.
type JobDeregisterResponse struct {
	EvalID          string `json:"eval_id"`
	EvalCreateIndex uint64 `json:"eval_create_index"`
	JobModifyIndex  uint64 `json:"job_modify_index"`
	Index           uint64 `json:"index"`
}

// JobSpecificRequest reads one job.
type JobSpecificRequest struct {
	JobID string
	QueryOptions
}

// SingleJobResponse carries one job, nil when it does not exist.
type SingleJobResponse struct {
	Job *Job
	QueryMeta
}

// JobListRequest lists jobs of a namespace ("*" for all), by ID prefix.
type JobListRequest struct {
	QueryOptions
}

// JobListResponse carries job stubs.
type JobListResponse struct {
	Jobs []*JobListStub
	QueryMeta
}

// JobVersionsResponse carries the kept versions of a job, newest first.
type JobVersionsResponse struct {
	Versions []*Job
	QueryMeta
}

// EvalUpdateRequest writes evaluations (created, completed, blocked).
type EvalUpdateRequest struct {
	Evals []*Evaluation
	WriteRequest
}

// EvalDeleteRequest removes evaluations (garbage collection).
type EvalDeleteRequest struct {
	EvalIDs []string
	WriteRequest
}

// EvalSpecificRequest reads one evaluation.
type EvalSpecificRequest struct {
	EvalID string
	QueryOptions
}

// SingleEvalResponse carries one evaluation, nil when it does not exist.
type SingleEvalResponse struct {
	Eval *Evaluation
	QueryMeta
}

// EvalListRequest lists evaluations, optionally of one job or status.
type EvalListRequest struct {
	JobID  string
	Status string
	QueryOptions
}

// EvalListResponse carries evaluations.
type EvalListResponse struct {
	Evals []*Evaluation
	QueryMeta
}

// GenericRequest is a read with no arguments of its own.
type GenericRequest struct {
	QueryOptions
}

// LeaderResponse names the leader's RPC address ("" when there is none).
type LeaderResponse struct {
	Leader string
	QueryMeta
}

// PeersResponse lists the Raft peers' addresses.
type PeersResponse struct {
	Peers []string
	QueryMeta
}

// RaftConfigurationResponse is the Raft configuration as the leader sees it.
type RaftConfigurationResponse struct {
	Servers []*RaftServer `json:"servers"`
	Index   uint64        `json:"index"`
}

// RaftPeerRequest removes a Raft peer by ID or address.
type RaftPeerRequest struct {
	ID      string
	Address string
	WriteRequest
}

// GenericResponse is the answer to a write with nothing else to say.
type GenericResponse struct {
	WriteMeta
}

// ForceLeaveRequest names a failed gossip member to remove from Raft.
type ForceLeaveRequest struct {
	Node string
	WriteRequest
}
