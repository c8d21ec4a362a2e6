package agent

import (
	"net/http"

	"github.com/drover-sh/drover/structs"
)

func (h *httpHandler) evalList(w http.ResponseWriter, r *http.Request) (any, error) {
	var args structs.EvalListRequest
	if err := parseQuery(r, &args.QueryOptions); err != nil {
		return nil, err
	}
	args.JobID = r.URL.Query().Get("job")
	args.Status = r.URL.Query().Get("status")
	var reply structs.EvalListResponse
	if err := h.agent.rpc("Eval.List", &args, &reply); err != nil {
		return nil, err
	}
	setMeta(w, &reply.QueryMeta)
	if reply.Evals == nil {
		reply.Evals = []*structs.Evaluation{}
	}
	return reply.Evals, nil
}

// evalGet reads one evaluation by ID or unique prefix; like allocation
// IDs, evaluation IDs are unique across namespaces.
func (h *httpHandler) evalGet(w http.ResponseWriter, r *http.Request) (any, error) {
	var q structs.QueryOptions
	if err := parseQuery(r, &q); err != nil {
		return nil, err
	}
	var reply structs.SingleEvalResponse
	get := func(id string, q structs.QueryOptions) (bool, error) {
		reply = structs.SingleEvalResponse{}
		args := structs.EvalSpecificRequest{EvalID: id, QueryOptions: q}
		if err := h.agent.rpc("Eval.GetEval", &args, &reply); err != nil {
			return false, err
		}
		return reply.Eval != nil, nil
	}
	list := func(q structs.QueryOptions) ([]string, error) {
		if q.Namespace == "" {
			q.Namespace = allNamespaces
		}
		var lr structs.EvalListResponse
		if err := h.agent.rpc("Eval.List", &structs.EvalListRequest{QueryOptions: q}, &lr); err != nil {
			return nil, err
		}
		ids := make([]string, len(lr.Evals))
		for i, e := range lr.Evals {
			ids[i] = e.ID
		}
		return ids, nil
	}
	if err := getByIDOrPrefix("evaluation", r.PathValue("id"), q, get, list); err != nil {
		return nil, err
	}
	setMeta(w, &reply.QueryMeta)
	return reply.Eval, nil
}
