package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/drover-sh/drover/structs"
)

// Agent talks to the agent answering, not to the cluster.
type Agent struct{ c *Client }

// Agent returns the agent endpoints.
func (c *Client) Agent() *Agent { return &Agent{c: c} }

// Agent roles reported by Self.
const (
	RoleServer       = structs.RoleServer
	RoleClient       = structs.RoleClient
	RoleServerClient = "server+client"
)

// AgentSelf describes the agent answering.
type AgentSelf struct {
	Name       string         `json:"name"`
	NodeID     string         `json:"node_id,omitempty"`
	Role       string         `json:"role"`
	Region     string         `json:"region"`
	Datacenter string         `json:"datacenter"`
	Version    string         `json:"version"`
	HTTPAddr   string         `json:"http_addr"`
	RPCAddr    string         `json:"rpc_addr,omitempty"`
	Member     structs.Member `json:"member"`
	// RaftStats is filled by servers only.
	RaftStats map[string]string `json:"raft_stats,omitempty"`
}

// AgentMembers is the gossip pool as the agent sees it.
type AgentMembers struct {
	Members []*structs.Member `json:"members"`
	// Leader is the RPC address of the Raft leader, "" if unknown.
	Leader string `json:"leader"`
}

// Self describes the agent answering.
func (a *Agent) Self(ctx context.Context) (*AgentSelf, error) {
	var out AgentSelf
	if _, err := a.c.query(ctx, "/agent/self", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Members lists the gossip pool.
func (a *Agent) Members(ctx context.Context) (*AgentMembers, error) {
	var out AgentMembers
	if _, err := a.c.query(ctx, "/agent/members", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Join asks the agent to join the gossip pool through the given addresses
// (host or host:port of their gossip port) and returns how many it reached.
func (a *Agent) Join(ctx context.Context, addrs ...string) (int, error) {
	if len(addrs) == 0 {
		return 0, errors.New("join: no address given")
	}
	r := a.c.newRequest(http.MethodPut, "/agent/join")
	r.params["address"] = addrs
	var out struct {
		NumJoined int `json:"num_joined"`
	}
	if err := a.c.write(ctx, r, nil, &out); err != nil {
		return 0, err
	}
	return out.NumJoined, nil
}

// ForceLeave removes a failed member from the gossip pool and, if it was a
// server, from the Raft configuration.
func (a *Agent) ForceLeave(ctx context.Context, node string) error {
	r := a.c.newRequest(http.MethodPut, "/agent/force-leave")
	r.params.Set("node", node)
	return a.c.write(ctx, r, nil, nil)
}
