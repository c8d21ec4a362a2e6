package command

import (
	"context"
	"fmt"
	"time"

	"github.com/drover-sh/drover/api"
	"github.com/drover-sh/drover/structs"
)

// exitPlacementFailure is job run's exit code when the scheduler could not
// place every allocation, as Nomad's.
const exitPlacementFailure = 2

// monitorWait is how long each blocking query of the monitor waits.
var monitorWait = 30 * time.Second

// monitorEval follows an evaluation (and the ones it hands over to with
// NextEval) until the scheduler is done with it, printing the allocations
// it placed and, if some could not be placed, why. It returns the exit
// code: 0, or exitPlacementFailure; a failed evaluation is an error.
func monitorEval(ctx context.Context, client *api.Client, evalID string) (int, error) {
	code, _, err := monitorEvalDone(ctx, client, evalID)
	return code, err
}

// monitorEvalDone is monitorEval that also returns the last evaluation.
func monitorEvalDone(ctx context.Context, client *api.Client, evalID string) (int, *structs.Evaluation, error) {
	fmt.Fprintf(stdout, "==> Monitoring evaluation %q\n", structs.ShortID(evalID))
	var index uint64
	status := ""
	for {
		eval, meta, err := client.Evaluations().Info(ctx, evalID, &api.QueryOptions{WaitIndex: index, WaitTime: monitorWait})
		if err != nil {
			return 0, nil, fmt.Errorf("watching evaluation %s: %w", evalID, err)
		}
		index = meta.LastIndex
		if status == "" {
			fmt.Fprintf(stdout, "    Evaluation triggered by %s\n", triggerText(eval))
		}
		if eval.Status != status {
			if status != "" {
				fmt.Fprintf(stdout, "    Evaluation status changed: %q -> %q\n", status, eval.Status)
			}
			status = eval.Status
		}
		if !eval.TerminalStatus() {
			continue
		}
		if err := printPlacedAllocs(ctx, client, eval); err != nil {
			return 0, nil, err
		}
		if eval.NextEval != "" {
			fmt.Fprintf(stdout, "    Evaluation %q continues in evaluation %q\n", structs.ShortID(eval.ID), structs.ShortID(eval.NextEval))
			evalID, index, status = eval.NextEval, 0, ""
			continue
		}
		code, err := finishEval(eval)
		return code, eval, err
	}
}

func triggerText(e *structs.Evaluation) string {
	switch {
	case e.NodeID != "":
		return fmt.Sprintf("node %q", structs.ShortID(e.NodeID))
	case e.JobID != "":
		return fmt.Sprintf("job %q", e.JobID)
	}
	return e.TriggeredBy
}

// printPlacedAllocs lists the allocations the evaluation created.
func printPlacedAllocs(ctx context.Context, client *api.Client, eval *structs.Evaluation) error {
	if eval.JobID == "" {
		return nil
	}
	allocs, _, err := client.Jobs().Allocations(ctx, eval.JobID, &api.QueryOptions{Namespace: eval.Namespace})
	if err != nil {
		return fmt.Errorf("listing allocations of job %q: %w", eval.JobID, err)
	}
	for _, a := range allocs {
		if a.EvalID == eval.ID {
			fmt.Fprintf(stdout, "    Allocation %q created: node %q, group %q\n",
				structs.ShortID(a.ID), structs.ShortID(a.NodeID), a.TaskGroup)
		}
	}
	return nil
}

func finishEval(eval *structs.Evaluation) (int, error) {
	short := structs.ShortID(eval.ID)
	if eval.Status == structs.EvalStatusFailed {
		return 0, fmt.Errorf("evaluation %q failed: %s", short, orNone(eval.StatusDescription))
	}
	if len(eval.FailedTGAllocs) == 0 {
		fmt.Fprintf(stdout, "==> Evaluation %q finished with status %q\n", short, eval.Status)
		return 0, nil
	}
	fmt.Fprintf(stdout, "==> Evaluation %q finished with status %q but failed to place all allocations:\n", short, eval.Status)
	printPlacementFailures(stdout, eval.FailedTGAllocs, "    ", true)
	if eval.BlockedEval != "" {
		fmt.Fprintf(stdout, "    Evaluation %q waiting for additional capacity to place remainder\n", structs.ShortID(eval.BlockedEval))
	}
	return exitPlacementFailure, nil
}
