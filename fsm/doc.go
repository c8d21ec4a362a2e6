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
//
// Some tables are derived in the same transactions as what they derive
// from and rebuilt on restore rather than snapshotted: node_usage holds,
// per node, what its live allocations take and the index of the servers'
// last change to its allocations (state_usage.go), so the scheduler, the
// plan applier and clients' watches read one row per node instead of
// every allocation on it. Writes are sized for go-immutable-radix: a
// transaction that modifies more than 8,192 nodes of one index walks the
// whole index on commit, so ApplyBatch bounds the entries that share one.
package fsm
