package agent

import (
	"net/http"

	"github.com/drover-sh/drover/structs"
)

func (h *httpHandler) deploymentList(w http.ResponseWriter, r *http.Request) (any, error) {
	var args structs.DeploymentListRequest
	if err := parseQuery(r, &args.QueryOptions); err != nil {
		return nil, err
	}
	args.JobID = r.URL.Query().Get("job")
	var reply structs.DeploymentListResponse
	if err := h.agent.rpc("Deployment.List", &args, &reply); err != nil {
		return nil, err
	}
	setMeta(w, &reply.QueryMeta)
	if reply.Deployments == nil {
		reply.Deployments = []*structs.Deployment{}
	}
	return reply.Deployments, nil
}

// deploymentGet reads one deployment by ID or unique prefix; deployment
// IDs are unique across namespaces.
func (h *httpHandler) deploymentGet(w http.ResponseWriter, r *http.Request) (any, error) {
	var q structs.QueryOptions
	if err := parseQuery(r, &q); err != nil {
		return nil, err
	}
	d, meta, err := h.lookupDeployment(r.PathValue("id"), q)
	if err != nil {
		return nil, err
	}
	setMeta(w, meta)
	return d, nil
}

func (h *httpHandler) lookupDeployment(id string, q structs.QueryOptions) (*structs.Deployment, *structs.QueryMeta, error) {
	var reply structs.SingleDeploymentResponse
	get := func(id string, q structs.QueryOptions) (bool, error) {
		reply = structs.SingleDeploymentResponse{}
		args := structs.DeploymentSpecificRequest{DeploymentID: id, QueryOptions: q}
		if err := h.agent.rpc("Deployment.GetDeployment", &args, &reply); err != nil {
			return false, err
		}
		return reply.Deployment != nil, nil
	}
	list := func(q structs.QueryOptions) ([]string, error) {
		if q.Namespace == "" {
			q.Namespace = allNamespaces
		}
		var lr structs.DeploymentListResponse
		if err := h.agent.rpc("Deployment.List", &structs.DeploymentListRequest{QueryOptions: q}, &lr); err != nil {
			return nil, err
		}
		ids := make([]string, len(lr.Deployments))
		for i, d := range lr.Deployments {
			ids[i] = d.ID
		}
		return ids, nil
	}
	if err := getByIDOrPrefix("deployment", id, q, get, list); err != nil {
		return nil, nil, err
	}
	return reply.Deployment, &reply.QueryMeta, nil
}

func (h *httpHandler) deploymentFail(w http.ResponseWriter, r *http.Request) (any, error) {
	d, _, err := h.lookupDeployment(r.PathValue("id"), structs.QueryOptions{})
	if err != nil {
		return nil, err
	}
	args := &structs.DeploymentFailRequest{DeploymentID: d.ID}
	args.AuthToken = r.Header.Get(headerToken)
	var reply structs.DeploymentUpdateResponse
	if err := h.agent.rpc("Deployment.Fail", args, &reply); err != nil {
		return nil, err
	}
	setIndex(w, reply.Index)
	return &reply, nil
}

func (h *httpHandler) deploymentPromote(w http.ResponseWriter, r *http.Request) (any, error) {
	d, _, err := h.lookupDeployment(r.PathValue("id"), structs.QueryOptions{})
	if err != nil {
		return nil, err
	}
	args := &structs.DeploymentPromoteRequest{DeploymentID: d.ID}
	args.AuthToken = r.Header.Get(headerToken)
	var reply structs.DeploymentUpdateResponse
	if err := h.agent.rpc("Deployment.Promote", args, &reply); err != nil {
		return nil, err
	}
	setIndex(w, reply.Index)
	return &reply, nil
}

type revertBody struct {
	JobVersion *uint64 `json:"job_version"`
}

// jobRevert registers a kept version of the job again as a new version.
func (h *httpHandler) jobRevert(w http.ResponseWriter, r *http.Request) (any, error) {
	raw, err := h.readBody(w, r)
	if err != nil {
		return nil, err
	}
	var body revertBody
	if err := decodeJSONBody(raw, &body); err != nil {
		return nil, err
	}
	if body.JobVersion == nil {
		return nil, invalidBody("job_version", "is required")
	}
	args := &structs.JobRevertRequest{JobID: r.PathValue("id"), JobVersion: *body.JobVersion}
	args.Namespace = r.URL.Query().Get("namespace")
	args.AuthToken = r.Header.Get(headerToken)
	var reply structs.JobRegisterResponse
	if err := h.agent.rpc("Job.Revert", args, &reply); err != nil {
		return nil, err
	}
	setIndex(w, reply.Index)
	return &reply, nil
}
