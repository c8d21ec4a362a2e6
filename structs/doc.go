// Package structs holds drover's objects (jobs, nodes, allocations,
// evaluations, deployments, plans), their pure methods (Copy, Canonicalize,
// Validate), the job file decoder and the Raft message types. It does no I/O
// and imports nothing else of drover: every other package depends on it.
package structs
