package containerd

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// registries resolves registry hosts for pulls: which scheme, which
// credentials. One http.Client and one authorizer serve every pull, so
// connections and bearer tokens are reused.
type registries struct {
	plainHTTP  map[string]bool
	auth       map[string]RegistryAuth
	client     *http.Client
	authorizer docker.Authorizer

	mu    sync.Mutex
	hosts map[string][]docker.RegistryHost
}

func newRegistries(plainHTTP []string, auth map[string]RegistryAuth) *registries {
	r := &registries{
		plainHTTP: make(map[string]bool, len(plainHTTP)),
		auth:      auth,
		client:    &http.Client{Transport: docker.DefaultHTTPTransport(&tls.Config{})},
		hosts:     make(map[string][]docker.RegistryHost),
	}
	for _, h := range plainHTTP {
		r.plainHTTP[h] = true
	}
	r.authorizer = docker.NewDockerAuthorizer(
		docker.WithAuthClient(r.client),
		docker.WithAuthCreds(r.credentials),
	)
	return r
}

// credentials answers the authorizer, which asks by the host it talks to.
func (r *registries) credentials(host string) (string, string, error) {
	if a, ok := r.auth[host]; ok {
		return a.Username, a.Password, nil
	}
	if host == "registry-1.docker.io" {
		if a, ok := r.auth["docker.io"]; ok {
			return a.Username, a.Password, nil
		}
	}
	return "", "", nil
}

// Hosts is a docker.RegistryHosts: loopback registries and those listed as
// plain HTTP use http, every other one https.
func (r *registries) Hosts(host string) ([]docker.RegistryHost, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if h, ok := r.hosts[host]; ok {
		return h, nil
	}
	endpoint, scheme := host, "https"
	if host == "docker.io" {
		endpoint = "registry-1.docker.io"
	}
	if r.plainHTTP[host] || docker.IsLocalhost(host) {
		scheme = "http"
	}
	h := []docker.RegistryHost{{
		Client:       r.client,
		Authorizer:   r.authorizer,
		Host:         endpoint,
		Scheme:       scheme,
		Path:         "/v2",
		Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve,
	}}
	r.hosts[host] = h
	return h, nil
}

func (r *registries) resolver() remotes.Resolver {
	return docker.NewResolver(docker.ResolverOptions{Hosts: r.Hosts})
}

// notFoundMessage asks the registry once more for ref's manifest, with a
// GET, to learn its own words for why it is missing: containerd resolves
// with HEAD, whose 404 has no body. Empty when the registry says nothing
// useful.
func (r *registries) notFoundMessage(ctx context.Context, ref string) string {
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return ""
	}
	hosts, err := r.Hosts(reference.Domain(named))
	if err != nil || len(hosts) == 0 {
		return ""
	}
	h := hosts[0]
	object := "latest"
	if d, ok := named.(reference.Digested); ok {
		object = d.Digest().String()
	} else if t, ok := named.(reference.Tagged); ok {
		object = t.Tag()
	}
	url := fmt.Sprintf("%s://%s%s/%s/manifests/%s", h.Scheme, h.Host, h.Path, reference.Path(named), object)

	resp, err := r.get(ctx, h, url)
	if err != nil {
		return ""
	}
	if resp.StatusCode == http.StatusUnauthorized {
		// A token registry answers 401 first; the authorizer learns the
		// challenge from it and the second try carries the token.
		_ = h.Authorizer.AddResponses(ctx, []*http.Response{resp})
		resp.Body.Close()
		if resp, err = r.get(ctx, h, url); err != nil {
			return ""
		}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	return registryErrors(resp.Status, body)
}

func (r *registries) get(ctx context.Context, h docker.RegistryHost, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", strings.Join([]string{
		ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest,
		"application/vnd.docker.distribution.manifest.list.v2+json",
		"application/vnd.docker.distribution.manifest.v2+json",
	}, ", "))
	if err := h.Authorizer.Authorize(ctx, req); err != nil {
		return nil, err
	}
	return h.Client.Do(req)
}

// registryErrors renders a registry's error body ({"errors": [{"code",
// "message"}]}, the distribution API's format) or, failing that, the
// status line and the start of the body.
func registryErrors(status string, body []byte) string {
	var doc struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &doc) == nil && len(doc.Errors) > 0 {
		parts := make([]string, 0, len(doc.Errors))
		for _, e := range doc.Errors {
			parts = append(parts, fmt.Sprintf("%s: %s", e.Code, e.Message))
		}
		return strings.Join(parts, "; ")
	}
	text := strings.TrimSpace(string(body))
	if len(text) > 200 {
		text = text[:200]
	}
	if text == "" {
		return status
	}
	return status + ": " + text
}
