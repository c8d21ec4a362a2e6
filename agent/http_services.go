package agent

import (
	"net/http"

	"github.com/drover-sh/drover/structs"
)

// serviceList answers GET /v1/services: the services of a namespace
// (?namespace=*: all) with their healthy instance counts.
func (h *httpHandler) serviceList(w http.ResponseWriter, r *http.Request) (any, error) {
	var args structs.ServiceListRequest
	if err := parseQuery(r, &args.QueryOptions); err != nil {
		return nil, err
	}
	var reply structs.ServiceListResponse
	if err := h.agent.rpc("Service.List", &args, &reply); err != nil {
		return nil, err
	}
	setMeta(w, &reply.QueryMeta)
	if reply.Services == nil {
		reply.Services = []*structs.ServiceListStub{}
	}
	return reply.Services, nil
}

// serviceGet answers GET /v1/service/{name}: the healthy instances of one
// service. A service without any is a 404 that still carries the index,
// so a watcher can block (?index=) until one registers.
func (h *httpHandler) serviceGet(w http.ResponseWriter, r *http.Request) (any, error) {
	args := structs.ServiceGetRequest{ServiceName: r.PathValue("name")}
	if err := parseQuery(r, &args.QueryOptions); err != nil {
		return nil, err
	}
	var reply structs.ServiceGetResponse
	if err := h.agent.rpc("Service.Get", &args, &reply); err != nil {
		return nil, err
	}
	setMeta(w, &reply.QueryMeta)
	if len(reply.Services) == 0 {
		ns := args.Namespace
		if ns == "" {
			ns = structs.DefaultNamespace
		}
		return nil, structs.NewError(structs.ErrNotFound, "service %q not found in namespace %q (no healthy instances)", args.ServiceName, ns)
	}
	return reply.Services, nil
}
