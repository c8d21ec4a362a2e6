package agent

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/drover-sh/drover/structs"
)

func (h *httpHandler) nodeList(w http.ResponseWriter, r *http.Request) (any, error) {
	var args structs.NodeListRequest
	if err := parseQuery(r, &args.QueryOptions); err != nil {
		return nil, err
	}
	var reply structs.NodeListResponse
	if err := h.agent.rpc("Node.List", &args, &reply); err != nil {
		return nil, err
	}
	setMeta(w, &reply.QueryMeta)
	if reply.Nodes == nil {
		reply.Nodes = []*structs.NodeListStub{}
	}
	return reply.Nodes, nil
}

// lookupNode reads the node named by the path's ID or a unique prefix of
// it.
func (h *httpHandler) lookupNode(r *http.Request) (*structs.SingleNodeResponse, error) {
	var q structs.QueryOptions
	if err := parseQuery(r, &q); err != nil {
		return nil, err
	}
	var reply structs.SingleNodeResponse
	get := func(id string, q structs.QueryOptions) (bool, error) {
		reply = structs.SingleNodeResponse{}
		args := structs.NodeSpecificRequest{NodeID: id, QueryOptions: q}
		if err := h.agent.rpc("Node.GetNode", &args, &reply); err != nil {
			return false, err
		}
		return reply.Node != nil, nil
	}
	list := func(q structs.QueryOptions) ([]string, error) {
		var lr structs.NodeListResponse
		if err := h.agent.rpc("Node.List", &structs.NodeListRequest{QueryOptions: q}, &lr); err != nil {
			return nil, err
		}
		ids := make([]string, len(lr.Nodes))
		for i, n := range lr.Nodes {
			ids[i] = n.ID
		}
		return ids, nil
	}
	if err := getByIDOrPrefix("node", r.PathValue("id"), q, get, list); err != nil {
		return nil, err
	}
	return &reply, nil
}

func (h *httpHandler) nodeGet(w http.ResponseWriter, r *http.Request) (any, error) {
	reply, err := h.lookupNode(r)
	if err != nil {
		return nil, err
	}
	setMeta(w, &reply.QueryMeta)
	return reply.Node, nil
}

// nodeAllocations lists every allocation of a node, terminal ones
// included, as the node's client sees them.
func (h *httpHandler) nodeAllocations(w http.ResponseWriter, r *http.Request) (any, error) {
	args := structs.NodeSpecificRequest{NodeID: r.PathValue("id")}
	if err := parseQuery(r, &args.QueryOptions); err != nil {
		return nil, err
	}
	if args.MinQueryIndex == 0 {
		// Resolve a prefix first; a blocking query names the full ID.
		node, err := h.lookupNode(r)
		if err != nil {
			return nil, err
		}
		args.NodeID = node.Node.ID
	}
	var reply structs.NodeAllocsResponse
	if err := h.agent.rpc("Node.GetAllocs", &args, &reply); err != nil {
		return nil, err
	}
	setMeta(w, &reply.QueryMeta)
	if reply.Allocs == nil {
		reply.Allocs = []*structs.Allocation{}
	}
	return reply.Allocs, nil
}

// drainBody is the JSON of PUT /v1/node/:id/drain. A null drain_spec
// cancels the drain. The deadline is a duration ("1h"); zero means no
// deadline and a negative one forces the allocations off at once.
type drainBody struct {
	DrainSpec *struct {
		Deadline         json.RawMessage `json:"deadline"`
		IgnoreSystemJobs bool            `json:"ignore_system_jobs"`
	} `json:"drain_spec"`
	MarkEligible bool `json:"mark_eligible"`
}

func (h *httpHandler) nodeDrain(w http.ResponseWriter, r *http.Request) (any, error) {
	raw, err := h.readBody(w, r)
	if err != nil {
		return nil, err
	}
	var body drainBody
	if err := decodeJSONBody(raw, &body); err != nil {
		return nil, err
	}
	args := &structs.NodeUpdateDrainRequest{NodeID: r.PathValue("id"), MarkEligible: body.MarkEligible}
	if spec := body.DrainSpec; spec != nil {
		deadline, err := parseDeadline(spec.Deadline)
		if err != nil {
			return nil, err
		}
		args.DrainStrategy = &structs.DrainStrategy{Deadline: deadline, IgnoreSystemJobs: spec.IgnoreSystemJobs}
	}
	args.AuthToken = r.Header.Get(headerToken)
	var reply structs.NodeUpdateStatusResponse
	if err := h.agent.rpc("Node.UpdateDrain", args, &reply); err != nil {
		return nil, err
	}
	setIndex(w, reply.Index)
	return &reply, nil
}

// parseDeadline reads drain_spec.deadline: a duration string, or a number
// of nanoseconds; absent is no deadline.
func parseDeadline(raw json.RawMessage) (structs.Duration, error) {
	const field = "drain_spec.deadline"
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		d, err := structs.ParseDuration(s)
		if err != nil {
			return 0, invalidBody(field, "%v", err)
		}
		return d, nil
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, invalidBody(field, "must be a duration like \"1h\" or a number of nanoseconds, got %s", raw)
	}
	return structs.Duration(n), nil
}

// eligibilityBody is the JSON of PUT /v1/node/:id/eligibility.
type eligibilityBody struct {
	Eligibility string `json:"eligibility"`
}

func (h *httpHandler) nodeEligibility(w http.ResponseWriter, r *http.Request) (any, error) {
	raw, err := h.readBody(w, r)
	if err != nil {
		return nil, err
	}
	var body eligibilityBody
	if err := decodeJSONBody(raw, &body); err != nil {
		return nil, err
	}
	switch body.Eligibility {
	case structs.NodeEligible, structs.NodeIneligible:
	default:
		return nil, invalidBody("eligibility", "must be %q or %q, got %q", structs.NodeEligible, structs.NodeIneligible, body.Eligibility)
	}
	args := &structs.NodeUpdateEligibilityRequest{NodeID: r.PathValue("id"), Eligibility: body.Eligibility}
	args.AuthToken = r.Header.Get(headerToken)
	var reply structs.NodeUpdateStatusResponse
	if err := h.agent.rpc("Node.UpdateEligibility", args, &reply); err != nil {
		return nil, err
	}
	setIndex(w, reply.Index)
	return &reply, nil
}
