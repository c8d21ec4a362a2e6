package dns

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/drover-sh/drover/structs"
)

// RPCFunc calls a server (the client's failover-aware RPC).
type RPCFunc func(method string, args, reply any) error

// watchWait is how long one blocking query waits for a change.
const watchWait = 5 * time.Minute

// Watch keeps cat in step with the registry until ctx ends: a blocking
// Service.NodeServices query, answered by any server from its own store
// (a stale read: a follower's view a few milliseconds old is fine for
// DNS, and it spreads thousands of nodes over the servers). Errors back
// off and retry; the catalog keeps its last content meanwhile.
func Watch(ctx context.Context, rpc RPCFunc, cat *Catalog, logger hclog.Logger) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	logger = logger.Named("dns")
	var index uint64
	retry := time.Duration(0)
	for ctx.Err() == nil {
		req := &structs.NodeServicesRequest{QueryOptions: structs.QueryOptions{
			MinQueryIndex: index, MaxQueryTime: watchWait, AllowStale: true,
		}}
		var resp structs.ServiceGetResponse
		err := rpc("Service.NodeServices", req, &resp)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			retry = min(max(retry*2, 250*time.Millisecond), 10*time.Second)
			logger.Warn("watching the service registry failed; retrying", "retry_in", retry, "error", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(retry + rand.N(retry/4+1)):
			}
			continue
		}
		retry = 0
		if resp.Index < index {
			// Another server, behind or restored from a snapshot: take
			// its answer and start over from its index.
			logger.Debug("registry index went back; resetting", "from", index, "to", resp.Index)
		}
		if resp.Index != index || index == 0 {
			cat.Set(resp.Index, resp.Services)
		}
		index = resp.Index
	}
}
