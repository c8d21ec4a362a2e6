//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

// versionedWeb is a count-4 service whose instances serve body on a
// dynamic host port, with an http check on checkPath; its rollouts go one
// allocation at a time, with extra as more update fields.
func versionedWeb(image, body, checkPath, extra string) string {
	return fmt.Sprintf(`id: web
type: service
datacenters: [dc1]
update: {max_parallel: 1, min_healthy_time: 1s, healthy_deadline: 8s, progress_deadline: 1m, auto_revert: true%s}
groups:
  - name: web
    count: 4
    network:
      mode: host
      ports: [{label: http}]
    services:
      - name: web
        port: http
        checks: [{type: http, path: %s, interval: 1s, timeout: 1s}]
    tasks:
      - name: httpd
        image: %s
        command: /bin/sh
        args: ["-c", "mkdir -p /tmp/www && echo %s > /tmp/www/index.html && exec httpd -f -p $DROVER_PORT_http -h /tmp/www"]
        resources: {cpu: 20, memory: 16}
        kill_timeout: 1s
`, extra, checkPath, image, body)
}

// httpSampler counts, every 50 ms, the job's instances that answer HTTP,
// by the body they serve: every allocation a client reports running is
// asked, whatever the servers want of it, so an instance counts for as
// long as it really serves.
type httpSampler struct {
	c     *Cluster
	job   string
	ports map[string]int // by allocation ID
	http  *http.Client

	mu      sync.Mutex
	samples int
	low     int
	lowAt   string
	last    map[string]int
	stop    chan struct{}
	done    chan struct{}
}

func startSampler(t *testing.T, c *Cluster, job string) *httpSampler {
	s := &httpSampler{c: c, job: job, ports: make(map[string]int), http: &http.Client{Timeout: 500 * time.Millisecond},
		low: 1 << 30, stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	t.Cleanup(s.close)
	return s
}

func (s *httpSampler) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

func (s *httpSampler) run() {
	defer close(s.done)
	for {
		select {
		case <-s.stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
		byBody, ok := s.sample()
		if !ok {
			continue // the cluster did not answer: this sample tells nothing
		}
		n := 0
		for _, k := range byBody {
			n += k
		}
		s.mu.Lock()
		s.samples++
		s.last = byBody
		if n < s.low {
			s.low, s.lowAt = n, fmt.Sprintf("%v at %s", byBody, time.Now().Format("15:04:05.000"))
		}
		s.mu.Unlock()
	}
}

func (s *httpSampler) sample() (map[string]int, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var stubs []*structs.AllocListStub
	var err error
	for _, a := range s.c.Running() {
		if stubs, _, err = a.Client().Jobs().Allocations(ctx, s.job, nil); err == nil {
			break
		}
	}
	if err != nil {
		return nil, false
	}
	out := make(map[string]int)
	for _, st := range stubs {
		if st.ClientStatus != structs.AllocClientRunning {
			continue
		}
		port, ok := s.ports[st.ID]
		if !ok {
			a, _, err := s.c.Agents[0].Client().Allocations().Info(ctx, st.ID, nil)
			if err != nil || a.Resources == nil || len(a.Resources.Ports) == 0 {
				return nil, false
			}
			port = a.Resources.Ports[0].Value
			s.ports[st.ID] = port
		}
		resp, err := s.http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			out[strings.TrimSpace(string(b))]++
		}
	}
	return out, true
}

// reset starts a new low-water mark and returns the previous one.
func (s *httpSampler) reset() (low, samples int, at string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	low, samples, at = s.low, s.samples, s.lowAt
	s.low, s.samples, s.lowAt = 1<<30, 0, ""
	return low, samples, at
}

// answering is the last sample, by body.
func (s *httpSampler) answering() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.last))
	for k, v := range s.last {
		out[k] = v
	}
	return out
}

// waitAnswering waits until the sampler saw exactly want, by body.
func (s *httpSampler) waitAnswering(t *testing.T, want map[string]int, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool { return maps.Equal(s.answering(), want) }, within, 50*time.Millisecond, "want %v answering, have %v", want, s.answering())
}

// jobRun runs `drover job run FILE` following the deployment, and
// returns its output and exit code.
func jobRun(t *testing.T, c *Cluster, yaml string) (string, int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "web.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o644))
	out, errOut, code := c.CLI(testCtx(t, 3*time.Minute), c.Agents[0], "job", "run", path)
	return out + errOut, code
}

var monitoredDeployment = regexp.MustCompile(`==> Monitoring deployment "([0-9a-f]{8})"`)

// The done-when of rolling deployments, on real clients with real HTTP:
// a count-4 service rolled from v1 to v2 one at a time never has fewer
// than 3 instances answering; a v3 that fails its check is rolled back to
// v2's spec by auto_revert, with `job run` exiting 2; a v4 with a canary
// runs beside v2 until `deployment promote`, then replaces it.
func TestDeployments_RollingUpdateRevertAndCanary(t *testing.T) {
	c, reg, _ := startNetClients(t, 2)
	ctx := testCtx(t, 6*time.Minute)

	out, code := jobRun(t, c, versionedWeb(reg.Image, "v1", "/index.html", ""))
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "successful")
	sampler := startSampler(t, c, "web")
	sampler.waitAnswering(t, map[string]int{"v1": 4}, 30*time.Second)
	sampler.reset()

	// v1 -> v2: at least 3 answer at every moment.
	start := time.Now()
	out, code = jobRun(t, c, versionedWeb(reg.Image, "v2", "/index.html", ""))
	require.Equal(t, 0, code, out)
	require.Contains(t, out, `==> Deployment`)
	require.Contains(t, out, "successful")
	sampler.waitAnswering(t, map[string]int{"v2": 4}, 30*time.Second)
	low, samples, at := sampler.reset()
	t.Logf("v1 -> v2 rolled out in %s; lowest count answering HTTP: %d (%s) over %d samples", time.Since(start).Round(time.Millisecond), low, at, samples)
	require.Greater(t, samples, 20, "samples taken during the rollout")
	require.GreaterOrEqual(t, low, 3, "fewer than 3 instances answered during the rollout: %s", at)

	// v3 never passes its check: the deployment fails at the healthy
	// deadline and v2's spec comes back as version 3.
	start = time.Now()
	out, code = jobRun(t, c, versionedWeb(reg.Image, "v3", "/missing.html", ""))
	require.Equal(t, 2, code, out)
	require.Contains(t, out, "rolling back to job version 1")
	require.Eventually(t, func() bool {
		j, _, err := c.Agents[0].Client().Jobs().Info(ctx, "web", nil)
		return err == nil && j.Version == 3 && j.Stable
	}, 60*time.Second, 100*time.Millisecond, "the reverted version 3 is not deployed")
	sampler.waitAnswering(t, map[string]int{"v2": 4}, 30*time.Second)
	low, samples, at = sampler.reset()
	t.Logf("v3 failed and was reverted to v2 in %s; lowest count answering: %d (%s) over %d samples", time.Since(start).Round(time.Millisecond), low, at, samples)
	require.GreaterOrEqual(t, low, 3, "fewer than 3 instances answered during the failed rollout: %s", at)
	out, _, code = c.CLI(ctx, c.Agents[0], "job", "history", "-p", "-version", "3", "web")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "Diff        = from version 2", "the revert's diff from the failed version")
	require.Contains(t, out, `"/missing.html" => "/index.html"`, out)

	// v4 with a canary: job run stops where a person must promote; the
	// canary serves beside the four of v2.
	out, code = jobRun(t, c, versionedWeb(reg.Image, "v4", "/index.html", ", canary: 1"))
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "waits for its canaries to be promoted")
	m := monitoredDeployment.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	sampler.waitAnswering(t, map[string]int{"v2": 4, "v4": 1}, 30*time.Second)
	status, errOut, code := c.CLI(ctx, c.Agents[0], "deployment", "status", m[1])
	require.Equal(t, 0, code, errOut)
	require.Contains(t, status, structs.DeploymentDescAwaitingPromotion)
	require.Regexp(t, `web\s+true\s+false\s+1\s+1\s+4`, status, "auto revert, not promoted, 1 desired and 1 placed canary, 4 desired")

	sampler.reset()
	out, errOut, code = c.CLI(ctx, c.Agents[0], "deployment", "promote", m[1])
	require.Equal(t, 0, code, "%s %s", out, errOut)
	require.Eventually(t, func() bool {
		st, _, code := c.CLI(ctx, c.Agents[0], "deployment", "status", m[1])
		return code == 0 && strings.Contains(st, "successful")
	}, 90*time.Second, 250*time.Millisecond, "the promoted deployment did not finish")
	sampler.waitAnswering(t, map[string]int{"v4": 4}, 30*time.Second)
	low, samples, at = sampler.reset()
	t.Logf("v4 promoted; lowest count answering while the rest rolled: %d (%s) over %d samples", low, at, samples)
	require.GreaterOrEqual(t, low, 3, "fewer than 3 instances answered after the promotion: %s", at)

	out, errOut, code = c.CLI(ctx, c.Agents[0], "job", "stop", "web")
	require.Equal(t, 0, code, "%s %s", out, errOut)
	sampler.waitAnswering(t, map[string]int{}, 30*time.Second)
}
