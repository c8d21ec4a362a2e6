package structs

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCanonicalize_FillsMissingBlocksByJobType(t *testing.T) {
	for _, typ := range []string{JobTypeService, JobTypeBatch, JobTypeSystem} {
		t.Run(typ, func(t *testing.T) {
			j := &Job{ID: "a", Type: typ, Groups: []*TaskGroup{{Name: "g", Tasks: []*Task{{Name: "t", Image: "x"}}}}}
			j.Canonicalize()
			require.Equal(t, DefaultNamespace, j.Namespace)
			require.Equal(t, DefaultPriority, j.Priority)
			require.Equal(t, []string{AnyDatacenter}, j.Datacenters)
			g := j.Groups[0]
			require.Equal(t, 0, g.Count, "without a file, a zero count is the caller's")
			require.Equal(t, DefaultRestartPolicy(typ), g.Restart)
			require.Equal(t, DefaultReschedulePolicy(typ), g.Reschedule)
			require.Equal(t, &NetworkSpec{Mode: NetworkModeHost}, g.Network)
			require.Equal(t, &Resources{CPU: DefaultTaskCPU, Memory: DefaultTaskMemory}, g.Tasks[0].Resources)
			require.Equal(t, DefaultKillTimeout, g.Tasks[0].KillTimeout)
			if typ == JobTypeService {
				require.Equal(t, DefaultUpdateStrategy(), j.Update)
			} else {
				require.Nil(t, j.Update)
			}
		})
	}
	require.Equal(t, 3, DefaultRestartPolicy(JobTypeBatch).Attempts)
	require.Equal(t, Duration(24*time.Hour), DefaultRestartPolicy(JobTypeBatch).Interval)
	require.Equal(t, DefaultRestartPolicy(JobTypeService), DefaultRestartPolicy(JobTypeSystem))
	require.Nil(t, DefaultReschedulePolicy(JobTypeSystem))
}

func TestCanonicalize_PresentBlocksKeepMeaningfulZeros(t *testing.T) {
	j := &Job{
		ID:     "a",
		Update: &UpdateStrategy{MaxParallel: 0, HealthyDeadline: Duration(time.Minute)},
		Groups: []*TaskGroup{{
			Name:       "g",
			Update:     &UpdateStrategy{Canary: 1},
			Restart:    &RestartPolicy{Mode: RestartModeDelay},
			Reschedule: &ReschedulePolicy{DelayFunction: DelayFibonacci},
			Network:    &NetworkSpec{Ports: []*Port{{Label: "http"}}},
			Services: []*Service{{Name: "web", Port: "http", Checks: []*Check{
				{Type: CheckHTTP, Interval: Duration(time.Second)},
				{Type: CheckScript, Command: "x", Interval: Duration(time.Minute), Timeout: Duration(3 * time.Second)},
			}}},
			Tasks: []*Task{{Name: "t", Image: "x", Resources: &Resources{Memory: 64}}},
		}},
	}
	j.Canonicalize()
	require.Equal(t, &UpdateStrategy{HealthyDeadline: Duration(time.Minute), ProgressDeadline: Duration(10 * time.Minute)}, j.Update)
	g := j.Groups[0]
	require.Equal(t, &UpdateStrategy{HealthyDeadline: Duration(time.Minute), ProgressDeadline: Duration(10 * time.Minute), Canary: 1}, g.Update,
		"deadlines come from the job's block")
	require.Equal(t, &RestartPolicy{Interval: Duration(30 * time.Minute), Mode: RestartModeDelay}, g.Restart)
	require.Equal(t, &ReschedulePolicy{Interval: Duration(time.Hour), DelayFunction: DelayFibonacci, MaxDelay: Duration(time.Hour)}, g.Reschedule,
		"a limited policy gets an interval and a growing one a ceiling")
	require.Equal(t, NetworkModeBridge, g.Network.Mode)
	require.Equal(t, &Check{Type: CheckHTTP, Path: "/", Port: "http", Interval: Duration(time.Second), Timeout: Duration(time.Second)}, g.Services[0].Checks[0])
	require.Equal(t, &Check{Type: CheckScript, Command: "x", Interval: Duration(time.Minute), Timeout: Duration(3 * time.Second)}, g.Services[0].Checks[1])
	require.Equal(t, &Resources{CPU: DefaultTaskCPU, Memory: 64}, g.Tasks[0].Resources)
}

func TestCanonicalize_Idempotent(t *testing.T) {
	jobs := map[string]*Job{
		"valid":  validJob(),
		"design": designExampleJob(),
		"empty":  {},
		"odd": {Type: "cron", Groups: []*TaskGroup{{Reschedule: &ReschedulePolicy{}, Update: &UpdateStrategy{}, Restart: &RestartPolicy{},
			Network: &NetworkSpec{}, Services: []*Service{{Checks: []*Check{{}}}}, Tasks: []*Task{{Resources: &Resources{}}}}}},
	}
	for name, j := range jobs {
		t.Run(name, func(t *testing.T) {
			j.Canonicalize()
			again := j.Copy()
			again.Canonicalize()
			require.Equal(t, j, again)
		})
	}
}

func TestCanonicalize_NilSafe(t *testing.T) {
	var nilJob *Job
	nilJob.Canonicalize()

	j := &Job{
		Constraints: []*Constraint{nil},
		Affinities:  []*Affinity{nil},
		Groups: []*TaskGroup{nil, {
			Constraints: []*Constraint{nil},
			Services:    []*Service{nil, {Checks: []*Check{nil}}},
			Tasks:       []*Task{nil},
		}},
	}
	require.NotPanics(t, j.Canonicalize)
	require.NotPanics(t, func() { _ = j.Validate() })
}

// The fields after Meta are the servers' (job.go says so); the decoder
// accepts and drops exactly those.
func TestServerFieldsAreTheJobFieldsAfterMeta(t *testing.T) {
	typ := reflect.TypeFor[Job]()
	meta, ok := typ.FieldByName("Meta")
	require.True(t, ok)
	var after []string
	for i := meta.Index[0] + 1; i < typ.NumField(); i++ {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		after = append(after, name)
	}
	require.Len(t, serverFields, len(after))
	for _, name := range after {
		require.True(t, serverFields[name], name)
	}
}
