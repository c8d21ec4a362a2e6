//go:build e2e

package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/drover-sh/drover/e2e"
)

// clientBench measures what drover adds on a node: the time from a job
// registration being accepted to its task's process running, against a
// bare `ctr run --rm` of the same cached image on the same containerd;
// then the client agent's RSS with the runs' allocations all running.
func clientBench(bin, repo string, runs int) error {
	dir, err := os.MkdirTemp("", "drover-bench-client-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	reg, err := e2e.StartRegistry(repo, dir)
	if err != nil {
		return err
	}
	defer reg.Stop()
	c, err := e2e.NewServers(bin, dir, 1)
	if err != nil {
		return err
	}
	if err := c.Start(); err != nil {
		return err
	}
	defer c.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := c.WaitLeader(ctx); err != nil {
		return err
	}
	node, err := c.NewClient("bench")
	if err != nil {
		return err
	}
	if err := node.Start(); err != nil {
		return err
	}
	if err := e2e.WaitHTTP(ctx, node); err != nil {
		return err
	}
	server := c.Agents[0].HTTPAddr()
	hc := &http.Client{Timeout: 30 * time.Second}
	if err := waitReadyNode(ctx, hc, server); err != nil {
		return err
	}

	// Warm up: the image is pulled once, as a cached image is what is
	// being compared.
	if _, err := startJob(ctx, hc, server, node, "warm", reg.Image); err != nil {
		return fmt.Errorf("warm-up job: %w", err)
	}
	var drover []time.Duration
	for i := 0; i < runs; i++ {
		d, err := startJob(ctx, hc, server, node, fmt.Sprintf("start-%02d", i), reg.Image)
		if err != nil {
			return err
		}
		drover = append(drover, d)
	}
	rss := rssMB(node.PID())

	// The same image, the same containerd, a namespace of its own.
	sock := node.ContainerdSocket()
	if out, err := exec.Command("ctr", "-a", sock, "-n", "bench-ctr", "images", "pull", "--plain-http", reg.Image).CombinedOutput(); err != nil {
		return fmt.Errorf("ctr pull: %v: %s", err, out)
	}
	var bare []time.Duration
	for i := 0; i < runs; i++ {
		d, err := ctrRun(sock, reg.Image, dir, i)
		if err != nil {
			return err
		}
		bare = append(bare, d)
	}
	removeCtrBenchNamespace(sock, reg.Image)

	printDurations(fmt.Sprintf("Client: job accepted -> task process running, %d runs, cached image, host network", runs), "path",
		durations{"drover: PUT /v1/jobs accepted -> running", drover},
		durations{"bare: ctr run --rm -> running", bare})
	fmt.Printf("drover's overhead over bare containerd (median): %.1f ms (target < 100 ms)\n", ms(median(drover)-median(bare)))
	fmt.Printf("client agent RSS with %d running allocations: %d MB (target < 60 MB)\n", runs+1, rss)
	return nil
}

// startJob registers a one-task service job whose process touches a file
// in its alloc dir as its first act, and returns the time from the
// registration's answer to that file appearing on the host.
func startJob(ctx context.Context, hc *http.Client, server string, node *e2e.Agent, id, image string) (time.Duration, error) {
	marker := "up-" + id
	job := fmt.Sprintf(`id: %s
type: service
datacenters: [dc1]
groups:
  - name: g
    network: {mode: host}
    tasks:
      - name: t
        image: %s
        command: /bin/sh
        args: ["-c", "touch /alloc/%s; exec sleep 3600"]
        resources: {cpu: 20, memory: 16}
        kill_timeout: 1s
`, id, image, marker)
	if err := put(hc, server+"/v1/jobs", "application/yaml", []byte(job)); err != nil {
		return 0, fmt.Errorf("registering %s: %w", id, err)
	}
	accepted := time.Now()
	pattern := filepath.Join(node.DataDir, "client", "allocs", "*", "alloc", marker)
	for {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return time.Since(accepted), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("job %s never started: %w", id, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// ctrRun times a bare `ctr run --rm` until its process has touched a file
// in a bind-mounted directory.
func ctrRun(sock, image, dir string, i int) (time.Duration, error) {
	out := filepath.Join(dir, fmt.Sprintf("ctr-%02d", i))
	if err := os.MkdirAll(out, 0o755); err != nil {
		return 0, err
	}
	cmd := exec.Command("ctr", "-a", sock, "-n", "bench-ctr", "run", "--rm", "--net-host",
		"--mount", "type=bind,src="+out+",dst=/out,options=rbind:rw",
		image, fmt.Sprintf("bench-ctr-%02d", i), "/bin/sh", "-c", "touch /out/up")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	var took time.Duration
	for took == 0 {
		if _, err := os.Stat(filepath.Join(out, "up")); err == nil {
			took = time.Since(start)
			break
		}
		if time.Since(start) > time.Minute {
			cmd.Process.Kill()
			return 0, fmt.Errorf("ctr run never started: %s", buf.String())
		}
		time.Sleep(time.Millisecond)
	}
	if err := cmd.Wait(); err != nil {
		return 0, fmt.Errorf("ctr run: %v: %s", err, buf.String())
	}
	return took, nil
}

func waitReadyNode(ctx context.Context, hc *http.Client, server string) error {
	for {
		resp, err := hc.Get(server + "/v1/nodes")
		if err == nil {
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			resp.Body.Close()
			if bytes.Contains(b.Bytes(), []byte(`"status":"ready"`)) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no ready client node: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// durations is one row of a latency table.
type durations struct {
	name string
	ds   []time.Duration
}

// printDurations prints a table of each row's median, min and max.
func printDurations(title, first string, rows ...durations) {
	w := len(first)
	for _, r := range rows {
		w = max(w, len(r.name))
	}
	fmt.Printf("\n%s\n", title)
	fmt.Printf("| %-*s | %9s | %9s | %9s |\n", w, first, "median ms", "min ms", "max ms")
	for _, r := range rows {
		fmt.Printf("| %-*s | %9.1f | %9.1f | %9.1f |\n", w, r.name, ms(median(r.ds)), ms(slices.Min(r.ds)), ms(slices.Max(r.ds)))
	}
}

// removeCtrBenchNamespace removes what the bare ctr runs left: the image
// in their namespace, the namespace, and runc's state dir for it.
func removeCtrBenchNamespace(sock, image string) {
	exec.Command("ctr", "-a", sock, "-n", "bench-ctr", "images", "rm", image).Run()
	exec.Command("ctr", "-a", sock, "namespaces", "rm", "bench-ctr").Run()
	os.Remove("/run/containerd/runc/bench-ctr")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// repoRoot finds the repository (for its scripts) from the working dir.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; dir != "/"; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "scripts", "registry.sh")); err == nil {
			return dir, nil
		}
	}
	return "", fmt.Errorf("no drover repository above %s (scripts/registry.sh)", wd)
}
