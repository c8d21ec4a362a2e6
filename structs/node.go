package structs

// Node statuses.
const (
	NodeStatusInit  = "initializing"
	NodeStatusReady = "ready"
	NodeStatusDown  = "down"
)

// Scheduling eligibility.
const (
	NodeEligible   = "eligible"
	NodeIneligible = "ineligible"
)

// Node is a client machine that runs allocations.
type Node struct {
	ID                    string                 `json:"id"`
	Name                  string                 `json:"name"`
	Datacenter            string                 `json:"datacenter"`
	NodeClass             string                 `json:"node_class,omitempty"`
	HTTPAddr              string                 `json:"http_addr,omitempty"`
	Attributes            map[string]string      `json:"attributes,omitempty"`
	Meta                  map[string]string      `json:"meta,omitempty"`
	Resources             *NodeResources         `json:"resources,omitempty"`
	Reserved              *NodeResources         `json:"reserved,omitempty"`
	Drivers               map[string]*DriverInfo `json:"drivers,omitempty"`
	Status                string                 `json:"status"`
	StatusDescription     string                 `json:"status_description,omitempty"`
	StatusUpdatedAt       int64                  `json:"status_updated_at"`
	SchedulingEligibility string                 `json:"scheduling_eligibility"`
	Drain                 *DrainStrategy         `json:"drain,omitempty"`
	CreateIndex           uint64                 `json:"create_index"`
	ModifyIndex           uint64                 `json:"modify_index"`
}

// NodeResources are what a node offers: CPU in MHz, memory in MiB, and the
// range dynamic host ports are taken from.
type NodeResources struct {
	CPU            int `json:"cpu"`
	Memory         int `json:"memory"`
	Cores          int `json:"cores,omitempty"`
	MinDynamicPort int `json:"min_dynamic_port,omitempty"`
	MaxDynamicPort int `json:"max_dynamic_port,omitempty"`
}

// DriverInfo says whether a task driver (containerd, networking) is usable.
type DriverInfo struct {
	Detected          bool              `json:"detected"`
	Healthy           bool              `json:"healthy"`
	HealthDescription string            `json:"health_description,omitempty"`
	Attributes        map[string]string `json:"attributes,omitempty"`
	UpdateTime        int64             `json:"update_time"`
}

// DrainStrategy is set while a node is draining.
type DrainStrategy struct {
	Deadline         Duration `json:"deadline"`
	IgnoreSystemJobs bool     `json:"ignore_system_jobs"`
	StartedAt        int64    `json:"started_at"`
	ForceDeadline    int64    `json:"force_deadline"`
}

// Ready reports whether the node can take new allocations.
func (n *Node) Ready() bool {
	return n.Status == NodeStatusReady && n.Drain == nil && n.SchedulingEligibility == NodeEligible
}

// TerminalStatus reports whether the node is down.
func (n *Node) TerminalStatus() bool { return n.Status == NodeStatusDown }

// Copy returns a deep copy of the node.
func (n *Node) Copy() *Node {
	if n == nil {
		return nil
	}
	c := *n
	c.Attributes = copyMap(n.Attributes)
	c.Meta = copyMap(n.Meta)
	if n.Resources != nil {
		r := *n.Resources
		c.Resources = &r
	}
	if n.Reserved != nil {
		r := *n.Reserved
		c.Reserved = &r
	}
	if n.Drivers != nil {
		c.Drivers = make(map[string]*DriverInfo, len(n.Drivers))
		for k, d := range n.Drivers {
			dc := *d
			dc.Attributes = copyMap(d.Attributes)
			c.Drivers[k] = &dc
		}
	}
	if n.Drain != nil {
		d := *n.Drain
		c.Drain = &d
	}
	return &c
}

// NodeListStub is the short form of a node in list responses.
type NodeListStub struct {
	ID                    string `json:"id"`
	Name                  string `json:"name"`
	Datacenter            string `json:"datacenter"`
	NodeClass             string `json:"node_class,omitempty"`
	HTTPAddr              string `json:"http_addr,omitempty"`
	Version               string `json:"version,omitempty"`
	Status                string `json:"status"`
	StatusDescription     string `json:"status_description,omitempty"`
	SchedulingEligibility string `json:"scheduling_eligibility"`
	Drain                 bool   `json:"drain"`
	CreateIndex           uint64 `json:"create_index"`
	ModifyIndex           uint64 `json:"modify_index"`
}

// Stub returns the list form of the node.
func (n *Node) Stub() *NodeListStub {
	return &NodeListStub{
		ID: n.ID, Name: n.Name, Datacenter: n.Datacenter, NodeClass: n.NodeClass,
		HTTPAddr: n.HTTPAddr, Version: n.Attributes["drover.version"],
		Status: n.Status, StatusDescription: n.StatusDescription,
		SchedulingEligibility: n.SchedulingEligibility, Drain: n.Drain != nil,
		CreateIndex: n.CreateIndex, ModifyIndex: n.ModifyIndex,
	}
}
