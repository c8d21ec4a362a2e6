package agent

import (
	"net/http"

	"github.com/drover-sh/drover/structs"
)

// allNamespaces reads every namespace.
const allNamespaces = "*"

func (h *httpHandler) allocList(w http.ResponseWriter, r *http.Request) (any, error) {
	var args structs.AllocListRequest
	if err := parseQuery(r, &args.QueryOptions); err != nil {
		return nil, err
	}
	var reply structs.AllocListResponse
	if err := h.agent.rpc("Alloc.List", &args, &reply); err != nil {
		return nil, err
	}
	setMeta(w, &reply.QueryMeta)
	if reply.Allocations == nil {
		reply.Allocations = []*structs.AllocListStub{}
	}
	return reply.Allocations, nil
}

// allocGet reads one allocation by ID or unique prefix. Allocation IDs are
// unique across namespaces, so a prefix is looked up in all of them unless
// the query names one.
func (h *httpHandler) allocGet(w http.ResponseWriter, r *http.Request) (any, error) {
	var q structs.QueryOptions
	if err := parseQuery(r, &q); err != nil {
		return nil, err
	}
	alloc, meta, err := h.findAlloc(r.PathValue("id"), q)
	if err != nil {
		return nil, err
	}
	setMeta(w, meta)
	return alloc, nil
}

// findAlloc reads an allocation by ID or unique prefix (see
// getByIDOrPrefix), with the metadata of the read that found it.
func (h *httpHandler) findAlloc(id string, q structs.QueryOptions) (*structs.Allocation, *structs.QueryMeta, error) {
	var reply structs.SingleAllocResponse
	get := func(id string, q structs.QueryOptions) (bool, error) {
		reply = structs.SingleAllocResponse{}
		args := structs.AllocSpecificRequest{AllocID: id, QueryOptions: q}
		if err := h.agent.rpc("Alloc.GetAlloc", &args, &reply); err != nil {
			return false, err
		}
		return reply.Alloc != nil, nil
	}
	list := func(q structs.QueryOptions) ([]string, error) {
		if q.Namespace == "" {
			q.Namespace = allNamespaces
		}
		var lr structs.AllocListResponse
		if err := h.agent.rpc("Alloc.List", &structs.AllocListRequest{QueryOptions: q}, &lr); err != nil {
			return nil, err
		}
		ids := make([]string, len(lr.Allocations))
		for i, a := range lr.Allocations {
			ids[i] = a.ID
		}
		return ids, nil
	}
	if err := getByIDOrPrefix("allocation", id, q, get, list); err != nil {
		return nil, nil, err
	}
	return reply.Alloc, &reply.QueryMeta, nil
}
