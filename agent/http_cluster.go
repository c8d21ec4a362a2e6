package agent

import (
	"net/http"

	"github.com/drover-sh/drover/structs"
)

func (h *httpHandler) statusLeader(w http.ResponseWriter, r *http.Request) (any, error) {
	var args structs.GenericRequest
	if err := parseQuery(r, &args.QueryOptions); err != nil {
		return nil, err
	}
	var reply structs.LeaderResponse
	if err := h.agent.rpc("Status.Leader", &args, &reply); err != nil {
		return nil, err
	}
	setMeta(w, &reply.QueryMeta)
	return reply.Leader, nil
}

func (h *httpHandler) statusPeers(w http.ResponseWriter, r *http.Request) (any, error) {
	var args structs.GenericRequest
	if err := parseQuery(r, &args.QueryOptions); err != nil {
		return nil, err
	}
	var reply structs.PeersResponse
	if err := h.agent.rpc("Status.Peers", &args, &reply); err != nil {
		return nil, err
	}
	setMeta(w, &reply.QueryMeta)
	if reply.Peers == nil {
		reply.Peers = []string{}
	}
	return reply.Peers, nil
}

// selfResponse describes the agent answering.
type selfResponse struct {
	Name       string            `json:"name"`
	NodeID     string            `json:"node_id"`
	Role       string            `json:"role"`
	Region     string            `json:"region"`
	Datacenter string            `json:"datacenter"`
	Version    string            `json:"version"`
	HTTPAddr   string            `json:"http_addr"`
	RPCAddr    string            `json:"rpc_addr,omitempty"`
	Member     structs.Member    `json:"member"`
	Stats      map[string]string `json:"raft_stats,omitempty"`
}

func (h *httpHandler) agentSelf(w http.ResponseWriter, r *http.Request) (any, error) {
	a := h.agent
	resp := &selfResponse{
		Name: a.config.Name, NodeID: a.nodeID, Role: structs.RoleClient,
		Region: a.config.Region, Datacenter: a.config.Datacenter,
		Version: structs.Version, HTTPAddr: a.HTTPAddr(), Member: a.gossip.LocalMember(),
	}
	if a.server != nil {
		resp.Role = structs.RoleServer
		if a.config.Client.Enabled {
			resp.Role = structs.RoleServer + "+" + structs.RoleClient
		}
		resp.RPCAddr = a.server.RPCAddr().String()
		resp.Stats = a.server.Stats()
	}
	return resp, nil
}

// membersResponse lists the gossip pool as this agent sees it.
type membersResponse struct {
	Members []structs.Member `json:"members"`
	Leader  string           `json:"leader"`
}

func (h *httpHandler) agentMembers(w http.ResponseWriter, r *http.Request) (any, error) {
	resp := &membersResponse{Members: h.agent.gossip.Members()}
	if h.agent.server != nil {
		resp.Leader = h.agent.server.Leader()
	}
	return resp, nil
}

func (h *httpHandler) agentJoin(w http.ResponseWriter, r *http.Request) (any, error) {
	addrs := r.URL.Query()["address"]
	if len(addrs) == 0 {
		return nil, invalidParam("address", "at least one address is required")
	}
	n, err := h.agent.Join(addrs)
	if err != nil {
		return nil, structs.NewError(structs.ErrUnavailable, "%v", err)
	}
	return map[string]int{"num_joined": n}, nil
}

func (h *httpHandler) agentForceLeave(w http.ResponseWriter, r *http.Request) (any, error) {
	node := r.URL.Query().Get("node")
	if node == "" {
		return nil, invalidParam("node", "the member name is required")
	}
	args := &structs.ForceLeaveRequest{Node: node}
	var reply structs.GenericResponse
	if err := h.agent.rpc("Operator.ForceLeave", args, &reply); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (h *httpHandler) operatorRaftConfiguration(w http.ResponseWriter, r *http.Request) (any, error) {
	var args structs.GenericRequest
	if err := parseQuery(r, &args.QueryOptions); err != nil {
		return nil, err
	}
	var reply structs.RaftConfigurationResponse
	if err := h.agent.rpc("Operator.RaftGetConfiguration", &args, &reply); err != nil {
		return nil, err
	}
	setIndex(w, reply.Index)
	return &reply, nil
}

func (h *httpHandler) operatorRaftRemovePeer(w http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	args := &structs.RaftPeerRequest{ID: q.Get("id"), Address: q.Get("address")}
	if args.ID == "" && args.Address == "" {
		return nil, invalidParam("id", "either id or address is required")
	}
	var reply structs.GenericResponse
	if err := h.agent.rpc("Operator.RaftRemovePeer", args, &reply); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// systemGC is PUT /v1/system/gc: a garbage collection now.
func (h *httpHandler) systemGC(w http.ResponseWriter, r *http.Request) (any, error) {
	var reply structs.GenericResponse
	if err := h.agent.rpc("System.GarbageCollect", &structs.GenericRequest{}, &reply); err != nil {
		return nil, err
	}
	setIndex(w, reply.Index)
	return struct{}{}, nil
}
