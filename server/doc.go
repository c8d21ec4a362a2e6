// Package server is a drover control-plane server: the Raft group whose
// state machine is the cluster store (package fsm), the internal RPC
// endpoints (Raft and RPC share one multiplexed TCP port), forwarding of
// writes and consistent reads to the leader, bootstrap from gossip, and the
// leader's own loop (membership reconciliation, and later the eval broker,
// scheduler workers, plan applier and controllers).
//
// The server does not own the gossip pool: the agent does, and hands the
// server membership events and a Membership to query and join through.
package server
