package scheduler

import (
	"time"

	"github.com/drover-sh/drover/structs"
)

// rescheduleWindow is how early a failed allocation may be replaced: an
// evaluation running a moment before the reschedule time should not
// create a follow-up for one second later.
const rescheduleWindow = time.Second

// followupBatchWindow groups allocations whose reschedule times are this
// close into one follow-up evaluation.
const followupBatchWindow = 5 * time.Second

// lastEventTime is when the allocation last changed on the client: its
// latest task finish, else its last modification.
func lastEventTime(a *structs.Allocation) time.Time {
	var last int64
	for _, s := range a.TaskStates {
		if s != nil && s.FinishedAt > last {
			last = s.FinishedAt
		}
	}
	if last == 0 {
		last = a.ModifyTime
	}
	if last == 0 {
		return time.Time{}
	}
	return time.Unix(0, last)
}

// nextDelay is how long after failing the allocation should be replaced:
// the policy's delay for a first failure, then growing with each
// reschedule in its tracker (doubling, or Fibonacci), capped at
// max_delay. Once the allocation ran longer than the cap since it was
// placed, the series starts over: it had been healthy.
func nextDelay(a *structs.Allocation, p *structs.ReschedulePolicy) time.Duration {
	delay := p.Delay.D()
	if a.RescheduleTracker == nil || len(a.RescheduleTracker.Events) == 0 {
		return delay
	}
	events := a.RescheduleTracker.Events
	last := events[len(events)-1]
	switch p.DelayFunction {
	case structs.DelayExponential:
		delay = last.Delay.D() * 2
	case structs.DelayFibonacci:
		if len(events) >= 2 {
			prev := events[len(events)-2]
			if prev.Delay == p.MaxDelay && last.Delay == p.Delay {
				// The series was reset: start it again.
				delay = last.Delay.D()
			} else {
				delay = last.Delay.D() + prev.Delay.D()
			}
		}
	default:
		return delay
	}
	if p.MaxDelay > 0 && delay > p.MaxDelay.D() {
		delay = p.MaxDelay.D()
		if lastEventTime(a).UnixNano()-last.RescheduleTime > int64(delay) {
			delay = p.Delay.D()
		}
	}
	return delay
}

// nextRescheduleTime returns when the failed allocation should be
// replaced, and whether its policy still allows it: unlimited, or fewer
// reschedules than attempts within the interval before the failure.
func nextRescheduleTime(a *structs.Allocation, p *structs.ReschedulePolicy) (time.Time, bool) {
	failTime := lastEventTime(a)
	if p == nil || a.ClientStatus != structs.AllocClientFailed || a.DesiredStatus != structs.AllocDesiredRun || failTime.IsZero() {
		return time.Time{}, false
	}
	delay := nextDelay(a, p)
	at := failTime.Add(delay)
	if p.Unlimited {
		return at, true
	}
	if p.Attempts <= 0 {
		return at, false
	}
	attempted := 0
	if a.RescheduleTracker != nil {
		for _, e := range a.RescheduleTracker.Events {
			if p.Interval == 0 || failTime.UnixNano()-e.RescheduleTime < int64(p.Interval) {
				attempted++
			}
		}
	}
	return at, attempted < p.Attempts
}

// rescheduleTracker returns the tracker of a replacement for prev: prev's
// events, bounded, plus this reschedule.
func rescheduleTracker(prev *structs.Allocation, p *structs.ReschedulePolicy, now time.Time) *structs.RescheduleTracker {
	var events []*structs.RescheduleEvent
	if prev.RescheduleTracker != nil {
		events = prev.RescheduleTracker.Events
		// An unlimited policy would grow the tracker forever; the last
		// few events are all the delay functions look at.
		if p != nil && p.Unlimited && len(events) > maxTrackedReschedules-1 {
			events = events[len(events)-(maxTrackedReschedules-1):]
		}
	}
	out := make([]*structs.RescheduleEvent, 0, len(events)+1)
	for _, e := range events {
		c := *e
		out = append(out, &c)
	}
	var delay time.Duration
	if p != nil {
		delay = nextDelay(prev, p)
	}
	out = append(out, &structs.RescheduleEvent{
		RescheduleTime: now.UnixNano(),
		PrevAllocID:    prev.ID,
		PrevNodeID:     prev.NodeID,
		Delay:          structs.Duration(delay),
	})
	return &structs.RescheduleTracker{Events: out}
}

// maxTrackedReschedules bounds the tracker of unlimited policies.
const maxTrackedReschedules = 10
