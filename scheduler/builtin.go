package scheduler

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/drover-sh/drover/structs"
)

// Builtin returns the schedulers for each job type, configured with opts.
func Builtin(opts Options) map[string]Factory {
	return map[string]Factory{
		structs.JobTypeService: func(l hclog.Logger, s State, p Planner, now func() time.Time) Scheduler {
			return newGenericScheduler(l, s, p, now, opts, false)
		},
		structs.JobTypeBatch: func(l hclog.Logger, s State, p Planner, now func() time.Time) Scheduler {
			return newGenericScheduler(l, s, p, now, opts, true)
		},
		structs.JobTypeSystem: func(l hclog.Logger, s State, p Planner, now func() time.Time) Scheduler {
			return newSystemScheduler(l, s, p, now, opts)
		},
	}
}

// BuiltinSchedulers are the schedulers with default options, by job type.
var BuiltinSchedulers = Builtin(Options{})

// NewScheduler builds the scheduler for evaluations of type kind.
func NewScheduler(kind string, opts Options, logger hclog.Logger, state State, planner Planner, now func() time.Time) (Scheduler, error) {
	f, ok := Builtin(opts)[kind]
	if !ok {
		return nil, fmt.Errorf("no scheduler for evaluation type %q", kind)
	}
	return f(logger, state, planner, now), nil
}
