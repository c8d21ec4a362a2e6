package structs

// Agent roles in the gossip pool.
const (
	RoleServer = "server"
	RoleClient = "client"
)

// Gossip member statuses.
const (
	MemberAlive   = "alive"
	MemberSuspect = "suspect"
	MemberDead    = "dead"
	MemberLeft    = "left"
)

// Member is one agent in the gossip pool, with the metadata it gossips.
type Member struct {
	Name       string `json:"name"`
	Addr       string `json:"addr"`
	Port       int    `json:"port"`
	Status     string `json:"status"`
	Role       string `json:"role"`
	Region     string `json:"region"`
	Datacenter string `json:"datacenter"`
	RPCAddr    string `json:"rpc_addr,omitempty"`
	HTTPAddr   string `json:"http_addr,omitempty"`
	RaftID     string `json:"raft_id,omitempty"`
	// NodeID is a client's node ID: gossip's failure notice about it
	// hurries the leader's down-node decision.
	NodeID          string `json:"node_id,omitempty"`
	BootstrapExpect int    `json:"bootstrap_expect,omitempty"`
	Version         string `json:"version,omitempty"`
}

// IsServer reports whether the member is a control-plane server.
func (m *Member) IsServer() bool { return m.Role == RoleServer }

// RaftServer is one entry of the Raft configuration.
type RaftServer struct {
	ID      string `json:"id"`
	Node    string `json:"node"`
	Address string `json:"address"`
	Leader  bool   `json:"leader"`
	Voter   bool   `json:"voter"`
}

// Member event types, as the gossip pool reports them.
const (
	MemberEventJoin   = "join"
	MemberEventLeave  = "leave"
	MemberEventFailed = "failed"
	MemberEventUpdate = "update"
)

// MemberEvent is a change in the gossip pool.
type MemberEvent struct {
	Type   string
	Member Member
}
