package command

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"golang.org/x/term"

	"github.com/drover-sh/drover/api"
	"github.com/drover-sh/drover/structs"
)

// exitDeploymentFailed is job run's exit code when the rollout it
// follows fails, as Nomad's.
const exitDeploymentFailed = 2

// jobDeployment finds the deployment that rolls out the registered
// version (same JobModifyIndex), or nil when the registration started none
// (a batch job, an in-place update, an unchanged spec).
func jobDeployment(ctx context.Context, client *api.Client, eval *structs.Evaluation, jobModifyIndex uint64) (*structs.Deployment, error) {
	if eval.JobID == "" || jobModifyIndex == 0 {
		return nil, nil
	}
	q := &api.QueryOptions{Namespace: eval.Namespace, Params: api.DeploymentFilter(eval.JobID)}
	deps, _, err := client.Deployments().List(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("listing deployments of job %q: %w", eval.JobID, err)
	}
	for _, d := range deps {
		if d.JobModifyIndex == jobModifyIndex {
			return d, nil
		}
	}
	return nil, nil
}

// monitorDeployment follows a deployment until it ends: on a terminal
// its group table is redrawn in place, otherwise each change is one plain
// line. It returns 0 when the deployment succeeded or waits for its
// canaries to be promoted, and exitDeploymentFailed when it failed or was
// cancelled.
func monitorDeployment(ctx context.Context, client *api.Client, d *structs.Deployment) (int, error) {
	fmt.Fprintf(stdout, "==> Monitoring deployment %q\n", structs.ShortID(d.ID))
	redraw := isTerminal(stdout)
	drawn := 0 // lines of the last table, to move back over
	last := ""
	index := uint64(0)
	for {
		if redraw {
			var buf bytes.Buffer
			printDeploymentGroups(&buf, d)
			if drawn > 0 {
				fmt.Fprintf(stdout, "\x1b[%dA\x1b[J", drawn) // up, clear to the end
			}
			stdout.Write(buf.Bytes())
			drawn = bytes.Count(buf.Bytes(), []byte("\n"))
		} else if line := deploymentLine(d); line != last {
			fmt.Fprintln(stdout, "    "+line)
			last = line
		}
		if !d.Active() {
			break
		}
		if d.StatusDescription == structs.DeploymentDescAwaitingPromotion {
			// Nothing more happens until a person promotes it.
			short := structs.ShortID(d.ID)
			fmt.Fprintf(stdout, "==> Deployment %q waits for its canaries to be promoted: drover deployment promote %s\n", short, short)
			return 0, nil
		}
		index = max(index, d.ModifyIndex)
		next, meta, err := client.Deployments().Info(ctx, d.ID, &api.QueryOptions{WaitIndex: index, WaitTime: monitorWait})
		if err != nil {
			return 0, fmt.Errorf("watching deployment %s: %w", d.ID, err)
		}
		index = max(index, meta.LastIndex)
		d = next
	}
	short := structs.ShortID(d.ID)
	if d.Status == structs.DeploymentStatusSuccessful {
		fmt.Fprintf(stdout, "==> Deployment %q successful\n", short)
		return 0, nil
	}
	fmt.Fprintf(stdout, "==> Deployment %q %s: %s\n", short, d.Status, orNone(d.StatusDescription))
	return exitDeploymentFailed, nil
}

// deploymentLine is one plain line of a deployment's progress.
func deploymentLine(d *structs.Deployment) string {
	names := make([]string, 0, len(d.TaskGroups))
	for name := range d.TaskGroups {
		names = append(names, name)
	}
	slices.Sort(names)
	parts := make([]string, 0, len(names))
	for _, name := range names {
		s := d.TaskGroups[name]
		part := fmt.Sprintf("group %q: desired %d, placed %d, healthy %d, unhealthy %d",
			name, s.DesiredTotal, s.PlacedAllocs, s.HealthyAllocs, s.UnhealthyAllocs)
		if s.DesiredCanaries > 0 {
			part += fmt.Sprintf(", canaries %d of %d placed, promoted %t", len(s.PlacedCanaries), s.DesiredCanaries, s.Promoted)
		}
		parts = append(parts, part)
	}
	return fmt.Sprintf("Deployment %q %s; %s", structs.ShortID(d.ID), d.Status, strings.Join(parts, "; "))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
