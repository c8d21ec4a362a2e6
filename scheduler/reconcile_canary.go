package scheduler

import (
	"cmp"
	"slices"

	"github.com/drover-sh/drover/structs"
)

// splitCanaries takes out of a group's allocations the canaries of the
// job's latest deployment while they wait for its promotion: they run
// beside the allocations they are to replace, outside count. Live
// canaries of a deployment that ended without promotion are stopped;
// promoted canaries are ordinary allocations of their version. The
// canaries returned are those that hold their place: live, or failed
// (the deployment fails on them; replacing them would only churn).
func (rc *reconciler) splitCanaries(tg *structs.TaskGroup, allocs []*structs.Allocation) (rest, canaries []*structs.Allocation) {
	d := rc.in.Deployment
	if d == nil {
		return allocs, nil
	}
	if s := d.TaskGroups[tg.Name]; s == nil || s.Promoted {
		return allocs, nil
	}
	waiting := d.Active() && rc.currentDeployment(d)
	u := rc.updates(tg.Name)
	rest = allocs[:0:0]
	for _, a := range allocs {
		if a.DeploymentID != d.ID || !a.IsCanary() {
			rest = append(rest, a)
			continue
		}
		switch {
		case a.DesiredStatus != structs.AllocDesiredRun || a.ClientStatus == structs.AllocClientLost:
		case !waiting:
			if !a.TerminalStatus() {
				rc.stop(a, descCanaryEnded, false)
				u.Stop++
			}
		case rc.nodeDown(a.NodeID):
			rc.stop(a, descLost, true)
			u.Lost++
		default:
			canaries = append(canaries, a)
		}
	}
	return rest, canaries
}

// currentDeployment reports whether d rolls out the job's current version.
func (rc *reconciler) currentDeployment(d *structs.Deployment) bool {
	return d.JobVersion == rc.in.Job.Version && d.JobCreateIndex == rc.in.Job.CreateIndex
}

// canaryGate says whether a group's destructive updates wait for
// canaries: its strategy asks for them and the current version's
// deployment has not promoted them. A deployment of this version that
// ended unpromoted holds the rollout where it is.
func (rc *reconciler) canaryGate(tg *structs.TaskGroup, s *structs.UpdateStrategy) (gated, ended bool) {
	if s == nil || s.Canary <= 0 {
		return false, false
	}
	d := rc.in.Deployment
	if d == nil || !rc.currentDeployment(d) {
		return true, false
	}
	if st := d.TaskGroups[tg.Name]; st != nil && st.Promoted {
		return false, false
	}
	return true, !d.Active()
}

// placeCanaries starts the group's missing canaries, each named after an
// allocation of the old version it is to replace once promoted.
func (rc *reconciler) placeCanaries(tg *structs.TaskGroup, s *structs.UpdateStrategy, destructive, canaries []*structs.Allocation) {
	desired := min(s.Canary, len(destructive)+len(canaries))
	if d := rc.in.Deployment; d != nil && rc.currentDeployment(d) {
		if st := d.TaskGroups[tg.Name]; st != nil && st.DesiredCanaries > 0 {
			desired = st.DesiredCanaries
		}
	}
	rc.desiredCanaries[tg.Name] = desired
	u := rc.updates(tg.Name)
	// More canaries than desired, or two of one name, only come from
	// races; the lowest names are kept.
	slices.SortStableFunc(canaries, func(a, b *structs.Allocation) int {
		return cmp.Or(cmp.Compare(allocIndex(a.Name), allocIndex(b.Name)), cmp.Compare(a.CreateIndex, b.CreateIndex))
	})
	taken := make(map[string]bool, len(canaries))
	kept := canaries[:0:0]
	for _, a := range canaries {
		if taken[a.Name] || len(kept) >= desired {
			if !a.TerminalStatus() {
				rc.stop(a, descDuplicate, false)
				u.Stop++
			}
			continue
		}
		taken[a.Name] = true
		kept = append(kept, a)
	}
	canaries = kept
	for _, a := range destructive {
		if len(canaries)+u.Canary >= desired {
			break
		}
		if taken[a.Name] {
			continue
		}
		taken[a.Name] = true
		rc.r.place = append(rc.r.place, &placement{name: a.Name, index: allocIndex(a.Name), tg: tg, canary: true})
		u.Canary++
	}
}
