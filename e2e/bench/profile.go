//go:build e2e

package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/drover-sh/drover/e2e"
)

// profileDir, when set (-profile-dir), receives the leader's CPU profile
// and a short execution trace of each measured phase. The trace shows
// where evaluations and requests wait, which a CPU profile cannot.
var profileDir string

// schedProfileLength is how long the scheduler run's CPU profile lasts,
// from the first submission.
var schedProfileLength time.Duration

// traceLength bounds the execution trace: a few seconds of a busy leader
// already make a trace of hundreds of megabytes.
const traceLength = 2 * time.Second

// traceDelay is how long into a phase the trace starts (-profile-trace-at),
// so it can show the steady state rather than the first requests.
var traceDelay time.Duration

type profile struct{ wg sync.WaitGroup }

// startProfile fetches, in the background, a CPU profile of length d
// from every agent into profileDir/<name>-<agent>-cpu.pprof, takes one of
// this process into <name>-bench-cpu.pprof and a trace of the leader into
// profileDir/<name>-trace.out; it does nothing unless -profile-dir was
// given.
func startProfile(agents []*e2e.Agent, leader *e2e.Agent, name string, d time.Duration) *profile {
	p := &profile{}
	if profileDir == "" || d < time.Second {
		return p
	}
	if err := os.MkdirAll(profileDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bench: profile:", err)
		return p
	}
	fetch := func(a *e2e.Agent, path, file string) {
		defer p.wg.Done()
		client := &http.Client{Timeout: d + time.Minute}
		resp, err := client.Get(a.HTTPAddr() + path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: profile:", err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(profileDir, file))
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: profile:", err)
			return
		}
		defer f.Close()
		if _, err := io.Copy(f, resp.Body); err != nil {
			fmt.Fprintln(os.Stderr, "bench: profile:", err)
		}
	}
	for _, a := range agents {
		role := "follower"
		if a == leader {
			role = "leader"
		}
		p.wg.Add(1)
		go fetch(a, fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(d.Seconds())), fmt.Sprintf("%s-%s-%s-cpu.pprof", name, role, a.Name))
	}
	// This process too: it is the load generator, or the simulated nodes,
	// and takes its share of the same CPUs.
	if f, err := os.Create(filepath.Join(profileDir, name+"-bench-cpu.pprof")); err != nil {
		fmt.Fprintln(os.Stderr, "bench: profile:", err)
	} else if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "bench: profile:", err)
		f.Close()
	} else {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			time.Sleep(d)
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	p.wg.Add(1)
	go func() {
		time.Sleep(min(traceDelay, d))
		fetch(leader, fmt.Sprintf("/debug/pprof/trace?seconds=%d", int(traceLength.Seconds())), name+"-trace.out")
	}()
	return p
}

// wait waits for the profiles to be written.
func (p *profile) wait() { p.wg.Wait() }
