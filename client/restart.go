package client

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/structs"
)

// restartDecision is what the restart policy says after a task ended or
// failed to start.
type restartDecision struct {
	restart bool
	delay   time.Duration
	// failed says, when not restarting, whether the task counts as
	// failed (the allocation then fails and the servers may reschedule).
	failed bool
	reason string // the restarting / not_restarting event's message
}

// restartTracker applies a group's restart policy: at most Attempts
// restarts within Interval, each after Delay; past that, mode fail gives
// up and mode delay waits for the interval to end. Restarts asked for by
// a user (`alloc restart`) do not go through it.
type restartTracker struct {
	policy structs.RestartPolicy
	batch  bool
	// count restarts used in the window that began at windowStart.
	count       int
	windowStart time.Time
	// jitter returns extra wait added to a delay, never less than zero,
	// so tasks that failed together do not restart in step.
	jitter func(time.Duration) time.Duration
}

func newRestartTracker(p *structs.RestartPolicy, jobType string) *restartTracker {
	if p == nil {
		p = structs.DefaultRestartPolicy(jobType)
	}
	return &restartTracker{policy: *p, batch: jobType == structs.JobTypeBatch, jitter: defaultJitter}
}

// defaultJitter adds up to a quarter of d.
func defaultJitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d/4 + 1)
}

// setPolicy takes the group's policy as it is now (an in-place update
// may have changed it); the counters carry over.
func (r *restartTracker) setPolicy(p *structs.RestartPolicy) {
	if p != nil {
		r.policy = *p
	}
}

// onExit judges a process that ended by itself.
func (r *restartTracker) onExit(res *driver.ExitResult, now time.Time) restartDecision {
	if r.batch && res.Successful() {
		return restartDecision{reason: "batch task completed successfully"}
	}
	return r.next(now, exitDescription(res))
}

// onStartFailure judges a task that could not be started (pull, create,
// start): it uses an attempt and waits the delay like an exit does, so a
// bad image is never retried faster than the policy allows.
func (r *restartTracker) onStartFailure(err error, now time.Time) restartDecision {
	return r.next(now, "failed to start: "+err.Error())
}

func (r *restartTracker) next(now time.Time, what string) restartDecision {
	p := r.policy
	interval := p.Interval.D()
	if r.windowStart.IsZero() || (interval > 0 && !now.Before(r.windowStart.Add(interval))) {
		r.windowStart, r.count = now, 0
	}
	r.count++
	if r.count <= p.Attempts {
		delay := p.Delay.D() + r.jitter(p.Delay.D())
		return restartDecision{restart: true, delay: delay,
			reason: fmt.Sprintf("%s; restarting in %s (attempt %d of %d in %s)", what, delay.Round(time.Millisecond), r.count, p.Attempts, interval)}
	}
	if p.Mode == structs.RestartModeDelay && interval > 0 {
		// Wait for the window to end; the next failure then starts a
		// new one with the attempts refilled.
		delay := max(r.windowStart.Add(interval).Sub(now), p.Delay.D())
		return restartDecision{restart: true, delay: delay,
			reason: fmt.Sprintf("%s; %d restarts in %s used, restarting in %s", what, p.Attempts, interval, delay.Round(time.Millisecond))}
	}
	return restartDecision{failed: true,
		reason: fmt.Sprintf("%s; restart policy exhausted (%d attempts in %s)", what, p.Attempts, interval)}
}

// exitDescription says how a process ended, for events.
func exitDescription(res *driver.ExitResult) string {
	switch {
	case res.Err != nil:
		return "exit unknown: " + res.Err.Error()
	case res.OOMKilled:
		return fmt.Sprintf("killed by the OOM killer (exit code %d)", res.ExitCode)
	case res.Signal != 0:
		return fmt.Sprintf("exited on signal %d (exit code %d)", res.Signal, res.ExitCode)
	default:
		return fmt.Sprintf("exited with code %d", res.ExitCode)
	}
}
