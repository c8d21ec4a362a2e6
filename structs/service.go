package structs

import (
	"slices"
	"strings"
)

// ServiceRegistration is one healthy instance of a group's service, as
// the client running it reports it: the registry the servers keep holds
// healthy instances only (an instance whose checks fail is deregistered
// until they pass again). Its ID is "<alloc_id>/<service name>/<port label>"
// so a client's repeated upserts replace, never duplicate.
type ServiceRegistration struct {
	ID          string   `json:"id"`
	ServiceName string   `json:"service_name"`
	Namespace   string   `json:"namespace"`
	NodeID      string   `json:"node_id"`
	Datacenter  string   `json:"datacenter"`
	JobID       string   `json:"job_id"`
	AllocID     string   `json:"alloc_id"`
	Tags        []string `json:"tags,omitempty"`
	// Address and Port are where the instance is reached: the
	// allocation's own IP and the port inside its network (bridge), or
	// the node's address and the host port (host mode).
	Address string `json:"address"`
	Port    int    `json:"port"`
	// HostAddress and HostPort reach it through the node (portmap).
	HostAddress string `json:"host_address,omitempty"`
	HostPort    int    `json:"host_port,omitempty"`
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
}

// ServiceRegistrationID is the ID of an allocation's service instance.
func ServiceRegistrationID(allocID, service, portLabel string) string {
	return allocID + "/" + service + "/" + portLabel
}

// Copy returns a deep copy.
func (s *ServiceRegistration) Copy() *ServiceRegistration {
	if s == nil {
		return nil
	}
	c := *s
	c.Tags = slices.Clone(s.Tags)
	return &c
}

// ServiceListStub is one service name with how many healthy instances it
// has, for `service list`.
type ServiceListStub struct {
	ServiceName string   `json:"service_name"`
	Namespace   string   `json:"namespace"`
	Tags        []string `json:"tags,omitempty"`
	Instances   int      `json:"instances"`
}

// ServiceRegistrationUpsertRequest registers or refreshes instances
// (ServiceRegistrationUpsertRequestType); a client sends its changes in
// batches.
type ServiceRegistrationUpsertRequest struct {
	Services []*ServiceRegistration
	WriteRequest
}

// ServiceRegistrationDeleteRequest removes instances by ID
// (ServiceRegistrationDeleteRequestType): checks failing, allocation
// stopping. NodeID, when set, scopes the delete to that node's instances.
type ServiceRegistrationDeleteRequest struct {
	IDs    []string
	NodeID string
	WriteRequest
}

// ServiceListRequest lists service names of a namespace ("*" for all).
type ServiceListRequest struct {
	QueryOptions
}

// ServiceListResponse carries service stubs, sorted by name.
type ServiceListResponse struct {
	Services []*ServiceListStub
	QueryMeta
}

// ServiceGetRequest reads the healthy instances of one service.
type ServiceGetRequest struct {
	ServiceName string
	QueryOptions
}

// ServiceGetResponse carries the instances, sorted by ID.
type ServiceGetResponse struct {
	Services []*ServiceRegistration
	QueryMeta
}

// NodeServicesRequest reads every healthy instance of every service (all
// namespaces): what a client's DNS server and proxy watch.
type NodeServicesRequest struct {
	QueryOptions
}

// Validate checks what a client reports about one instance, recording
// every problem under field (e.g. "services[2]").
func (s *ServiceRegistration) Validate(v *ValidationError, field string) {
	if s == nil {
		v.Add(field, "must not be null")
		return
	}
	if s.AllocID == "" {
		v.Add(field+".alloc_id", "required")
	}
	if s.NodeID == "" {
		v.Add(field+".node_id", "required")
	}
	if len(s.ServiceName) > maxIDLength || !serviceNamePattern.MatchString(s.ServiceName) {
		v.Add(field+".service_name", "must be a DNS label: at most %d lowercase letters, digits and '-', not starting or ending with '-', got %q", maxIDLength, s.ServiceName)
	}
	if prefix := s.AllocID + "/" + s.ServiceName + "/"; !strings.HasPrefix(s.ID, prefix) || len(s.ID) == len(prefix) {
		v.Add(field+".id", "must be <alloc_id>/<service_name>/<port label>, got %q", s.ID)
	}
	if s.Address == "" {
		v.Add(field+".address", "required")
	}
	if s.Port < 1 || s.Port > 65535 {
		v.Add(field+".port", "must be between 1 and 65535, got %d", s.Port)
	}
	if s.HostPort < 0 || s.HostPort > 65535 {
		v.Add(field+".host_port", "must be between 0 and 65535, got %d", s.HostPort)
	}
}
