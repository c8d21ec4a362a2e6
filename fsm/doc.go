// Package fsm owns drover's cluster state: the in-memory object store
// (go-memdb tables of jobs, job versions, evaluations, nodes, allocations
// and deployments, with a per-table Raft index) and the raft.FSM that
// writes every committed log entry into it.
//
// The Raft log is the only writer. Apply decodes one typed command and makes
// one state-store call, deterministically, so every server that applies the
// same log holds the same store. Readers take consistent read-only views
// (StateSnapshot) and use watch sets to block until something they read
// changes (BlockingQuery). Snapshot and Restore stream the store to and from
// a Raft snapshot sink record by record; a restore swaps in a new store and
// wakes every blocked query so it re-reads from the new one.
//
// Objects handed out by the store are shared with it: callers must not
// modify them (Copy first), which is what lets reads skip copying.
package fsm
