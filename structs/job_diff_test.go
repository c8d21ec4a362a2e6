package structs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// diffJob is a canonical service job with one group of two tasks.
func diffJob() *Job {
	j := &Job{
		ID: "web", Type: JobTypeService, Priority: 50, Datacenters: []string{"dc1"},
		Groups: []*TaskGroup{{
			Name:  "frontend",
			Count: 3,
			Network: &NetworkSpec{Mode: NetworkModeBridge, Ports: []*Port{
				{Label: "http", To: 8080},
				{Label: "admin", Static: 9090, To: 9090},
			}},
			Services: []*Service{{Name: "web", Port: "http", Tags: []string{"a"},
				Checks: []*Check{{Type: "http", Path: "/", Interval: Duration(5 * time.Second), Timeout: Duration(time.Second)}}}},
			Tasks: []*Task{
				{Name: "server", Image: "busybox:1", Command: "/bin/httpd", Args: []string{"-f", "-p", "8080"},
					Env: map[string]string{"GREETING": "hello", "MODE": "prod"}, Resources: &Resources{CPU: 100, Memory: 64}},
				{Name: "sidecar", Image: "busybox:1", Command: "/bin/sh"},
			},
		}},
	}
	j.Canonicalize()
	return j
}

func TestDiffJobs_SameSpecIsNone(t *testing.T) {
	old, new := diffJob(), diffJob()
	// Server-set fields are not part of the spec.
	new.Version, new.Status, new.ModifyIndex, new.JobModifyIndex, new.SubmitTime = 4, JobStatusRunning, 90, 90, 12345
	d := DiffJobs(old, new)
	require.Equal(t, DiffTypeNone, d.Type)
	require.Equal(t, "web", d.ID)
	require.Empty(t, d.Fields)
	require.Empty(t, d.Objects)
	require.Len(t, d.Groups, 1, "unchanged groups are listed, for the plan's counts")
	g := d.Groups[0]
	require.Equal(t, DiffTypeNone, g.Type)
	require.Len(t, g.Tasks, 2)
	for _, task := range g.Tasks {
		require.Equal(t, DiffTypeNone, task.Type)
		require.Empty(t, task.Annotations)
	}
	require.False(t, TasksUpdated(old.Groups[0], new.Groups[0]))
}

func TestDiffJobs_NewJobIsAllAdded(t *testing.T) {
	d := DiffJobs(nil, diffJob())
	require.Equal(t, DiffTypeAdded, d.Type)
	require.Contains(t, d.Fields, &FieldDiff{Type: DiffTypeAdded, Name: "priority", New: "50"})
	require.Contains(t, d.Objects, &ObjectDiff{Type: DiffTypeAdded, Name: "datacenters",
		Fields: []*FieldDiff{{Type: DiffTypeAdded, Name: "datacenter", New: "dc1"}}})
	g := d.Groups[0]
	require.Equal(t, DiffTypeAdded, g.Type)
	require.Equal(t, []*FieldDiff{{Type: DiffTypeAdded, Name: "count", New: "3"}}, g.Fields)
	for _, task := range g.Tasks {
		require.Equal(t, DiffTypeAdded, task.Type)
		require.Equal(t, []string{AnnotationForcesCreate}, task.Annotations)
	}
	server := g.Tasks[0]
	require.Contains(t, server.Fields, &FieldDiff{Type: DiffTypeAdded, Name: "image", New: "busybox:1"})
	require.Contains(t, server.Objects, &ObjectDiff{Type: DiffTypeAdded, Name: "env", Fields: []*FieldDiff{
		{Type: DiffTypeAdded, Name: "GREETING", New: "hello"},
		{Type: DiffTypeAdded, Name: "MODE", New: "prod"},
	}})
}

func TestDiffJobs_RemovedJobIsAllDeleted(t *testing.T) {
	d := DiffJobs(diffJob(), nil)
	require.Equal(t, DiffTypeDeleted, d.Type)
	require.Equal(t, "web", d.ID)
	require.Equal(t, DiffTypeDeleted, d.Groups[0].Type)
	require.Equal(t, []string{AnnotationForcesDestroy}, d.Groups[0].Tasks[0].Annotations)
	require.Nil(t, DiffJobs(nil, nil))
}

func TestDiffJobs_CountOnlyIsInPlace(t *testing.T) {
	old, new := diffJob(), diffJob()
	new.Groups[0].Count = 5
	d := DiffJobs(old, new)
	require.Equal(t, DiffTypeEdited, d.Type)
	g := d.Groups[0]
	require.Equal(t, DiffTypeEdited, g.Type)
	require.Equal(t, []*FieldDiff{{Type: DiffTypeEdited, Name: "count", Old: "3", New: "5"}}, g.Fields)
	require.Empty(t, g.Objects)
	require.Equal(t, DiffTypeNone, g.Tasks[0].Type)
	require.False(t, TasksUpdated(old.Groups[0], new.Groups[0]))
}

func TestDiffJobs_ImageChangeIsDestructive(t *testing.T) {
	old, new := diffJob(), diffJob()
	new.Groups[0].Tasks[0].Image = "busybox:2"
	d := DiffJobs(old, new)
	server, sidecar := d.Groups[0].Tasks[0], d.Groups[0].Tasks[1]
	require.Equal(t, DiffTypeEdited, server.Type)
	require.Equal(t, []*FieldDiff{{Type: DiffTypeEdited, Name: "image", Old: "busybox:1", New: "busybox:2"}}, server.Fields)
	require.Equal(t, []string{AnnotationForcesDestructiveUpdate}, server.Annotations)
	require.Equal(t, DiffTypeNone, sidecar.Type)
	require.Empty(t, sidecar.Annotations)
	require.True(t, TasksUpdated(old.Groups[0], new.Groups[0]))
}

func TestDiffJobs_EnvIsPerKey(t *testing.T) {
	old, new := diffJob(), diffJob()
	new.Groups[0].Tasks[0].Env = map[string]string{"GREETING": "bye", "EXTRA": "1"}
	d := DiffJobs(old, new)
	server := d.Groups[0].Tasks[0]
	require.Equal(t, []*ObjectDiff{{Type: DiffTypeEdited, Name: "env", Fields: []*FieldDiff{
		{Type: DiffTypeAdded, Name: "EXTRA", New: "1"},
		{Type: DiffTypeEdited, Name: "GREETING", Old: "hello", New: "bye"},
		{Type: DiffTypeDeleted, Name: "MODE", Old: "prod"},
	}}}, server.Objects)
	require.Equal(t, []string{AnnotationForcesDestructiveUpdate}, server.Annotations)

	// nil and empty are the same environment.
	old.Groups[0].Tasks[1].Env = map[string]string{}
	require.Equal(t, DiffTypeNone, DiffJobs(old, diffJob()).Groups[0].Tasks[1].Type)
	require.True(t, TasksUpdated(old.Groups[0], new.Groups[0]))
}

func TestDiffJobs_ArgsArePositional(t *testing.T) {
	old, new := diffJob(), diffJob()
	new.Groups[0].Tasks[0].Args = []string{"-f", "-p", "9090", "-v"}
	server := DiffJobs(old, new).Groups[0].Tasks[0]
	require.Equal(t, []*ObjectDiff{{Type: DiffTypeEdited, Name: "args", Fields: []*FieldDiff{
		{Type: DiffTypeEdited, Name: "[2]", Old: "8080", New: "9090"},
		{Type: DiffTypeAdded, Name: "[3]", New: "-v"},
	}}}, server.Objects)
	require.Equal(t, []string{AnnotationForcesDestructiveUpdate}, server.Annotations)

	new.Groups[0].Tasks[0].Args = nil
	server = DiffJobs(old, new).Groups[0].Tasks[0]
	require.Equal(t, DiffTypeDeleted, server.Objects[0].Type)
	require.Len(t, server.Objects[0].Fields, 3)
}

func TestDiffJobs_ResourcesAreDestructive(t *testing.T) {
	old, new := diffJob(), diffJob()
	new.Groups[0].Tasks[0].Resources.Memory = 128
	server := DiffJobs(old, new).Groups[0].Tasks[0]
	require.Equal(t, []*ObjectDiff{{Type: DiffTypeEdited, Name: "resources", Fields: []*FieldDiff{
		{Type: DiffTypeEdited, Name: "memory", Old: "64", New: "128"},
	}}}, server.Objects)
	require.Equal(t, []string{AnnotationForcesDestructiveUpdate}, server.Annotations)
	require.True(t, TasksUpdated(old.Groups[0], new.Groups[0]))
}

func TestDiffJobs_InPlaceChanges(t *testing.T) {
	for name, change := range map[string]func(j *Job){
		"task meta":    func(j *Job) { j.Groups[0].Tasks[0].Meta = map[string]string{"owner": "me"} },
		"kill timeout": func(j *Job) { j.Groups[0].Tasks[0].KillTimeout = Duration(time.Minute) },
		"group constraint": func(j *Job) {
			j.Groups[0].Constraints = []*Constraint{{Attribute: "${node.class}", Operator: "=", Value: "edge"}}
		},
		"restart policy": func(j *Job) { j.Groups[0].Restart.Attempts = 9 },
		"service tags":   func(j *Job) { j.Groups[0].Services[0].Tags = []string{"a", "b"} },
	} {
		t.Run(name, func(t *testing.T) {
			old, new := diffJob(), diffJob()
			change(new)
			d := DiffJobs(old, new)
			require.Equal(t, DiffTypeEdited, d.Type)
			require.Equal(t, DiffTypeEdited, d.Groups[0].Type)
			require.False(t, TasksUpdated(old.Groups[0], new.Groups[0]))
			for _, task := range d.Groups[0].Tasks {
				if task.Type == DiffTypeEdited {
					require.Equal(t, []string{AnnotationForcesInPlaceUpdate}, task.Annotations)
				}
			}
		})
	}
}

func TestDiffJobs_NetworkChangeIsDestructiveForTheGroup(t *testing.T) {
	old, new := diffJob(), diffJob()
	new.Groups[0].Network.Ports[0].To = 8081
	new.Groups[0].Network.Ports = append(new.Groups[0].Network.Ports, &Port{Label: "metrics"})
	new.Groups[0].Tasks[1].Meta = map[string]string{"x": "y"}
	g := DiffJobs(old, new).Groups[0]
	require.Equal(t, []*ObjectDiff{{Type: DiffTypeEdited, Name: "network", Objects: []*ObjectDiff{
		{Type: DiffTypeEdited, Name: "port", Fields: []*FieldDiff{{Type: DiffTypeEdited, Name: "to", Old: "8080", New: "8081"}}},
		{Type: DiffTypeAdded, Name: "port", Fields: []*FieldDiff{{Type: DiffTypeAdded, Name: "label", New: "metrics"}}},
	}}}, g.Objects)
	require.True(t, TasksUpdated(old.Groups[0], new.Groups[0]))
	// A meta change rides along with the group's replacement.
	require.Equal(t, []string{AnnotationForcesDestructiveUpdate}, g.Tasks[1].Annotations)
}

func TestDiffJobs_JobLevelBlocks(t *testing.T) {
	old, new := diffJob(), diffJob()
	new.Datacenters = []string{"dc2", "dc1"}
	new.Priority = 70
	new.Constraints = []*Constraint{{Attribute: "${attr.kernel.name}", Operator: "=", Value: "linux"}}
	old.Meta = map[string]string{"team": "a"}
	new.Update.MaxParallel = 2
	d := DiffJobs(old, new)
	require.Equal(t, DiffTypeEdited, d.Type)
	require.Equal(t, []*FieldDiff{{Type: DiffTypeEdited, Name: "priority", Old: "50", New: "70"}}, d.Fields)
	require.Equal(t, []*ObjectDiff{
		{Type: DiffTypeEdited, Name: "datacenters", Fields: []*FieldDiff{{Type: DiffTypeAdded, Name: "datacenter", New: "dc2"}}},
		{Type: DiffTypeAdded, Name: "constraint", Fields: []*FieldDiff{
			{Type: DiffTypeAdded, Name: "attribute", New: "${attr.kernel.name}"},
			{Type: DiffTypeAdded, Name: "operator", New: "="},
			{Type: DiffTypeAdded, Name: "value", New: "linux"},
		}},
		{Type: DiffTypeEdited, Name: "update", Fields: []*FieldDiff{{Type: DiffTypeEdited, Name: "max_parallel", Old: "1", New: "2"}}},
		{Type: DiffTypeDeleted, Name: "meta", Fields: []*FieldDiff{{Type: DiffTypeDeleted, Name: "team", Old: "a"}}},
	}, d.Objects)
	require.Equal(t, DiffTypeNone, d.Groups[0].Type, "job-level changes leave the groups alone")
}

func TestDiffJobs_GroupsAndTasksAddedAndRemoved(t *testing.T) {
	old, new := diffJob(), diffJob()
	new.Groups[0].Tasks = new.Groups[0].Tasks[:1]
	new.Groups[0].Tasks = append(new.Groups[0].Tasks, &Task{Name: "logger", Image: "busybox:1", Resources: &Resources{CPU: 10, Memory: 10}})
	extra := new.Groups[0].Copy()
	extra.Name = "backend"
	new.Groups = append(new.Groups, extra)
	old.Groups = append(old.Groups, &TaskGroup{Name: "legacy", Count: 1, Tasks: []*Task{{Name: "t", Image: "x"}}})

	d := DiffJobs(old, new)
	require.Len(t, d.Groups, 3)
	frontend, backend, legacy := d.Groups[0], d.Groups[1], d.Groups[2]
	require.Equal(t, "frontend", frontend.Name)
	require.Equal(t, DiffTypeEdited, frontend.Type)
	require.Equal(t, "backend", backend.Name)
	require.Equal(t, DiffTypeAdded, backend.Type)
	require.Equal(t, "legacy", legacy.Name)
	require.Equal(t, DiffTypeDeleted, legacy.Type)
	require.Equal(t, []*FieldDiff{{Type: DiffTypeDeleted, Name: "count", Old: "1"}}, legacy.Fields)

	require.Len(t, frontend.Tasks, 3)
	require.Equal(t, DiffTypeNone, frontend.Tasks[0].Type)
	require.Equal(t, "logger", frontend.Tasks[1].Name)
	require.Equal(t, []string{AnnotationForcesCreate}, frontend.Tasks[1].Annotations)
	require.Equal(t, "sidecar", frontend.Tasks[2].Name)
	require.Equal(t, DiffTypeDeleted, frontend.Tasks[2].Type)
	require.Equal(t, []string{AnnotationForcesDestroy}, frontend.Tasks[2].Annotations)
	require.True(t, TasksUpdated(old.Groups[0], new.Groups[0]), "a different set of tasks needs new allocations")
}

func TestDiffJobs_ServiceChecks(t *testing.T) {
	old, new := diffJob(), diffJob()
	new.Groups[0].Services[0].Checks[0].Path = "/health"
	g := DiffJobs(old, new).Groups[0]
	require.Equal(t, []*ObjectDiff{{Type: DiffTypeEdited, Name: "service", Objects: []*ObjectDiff{
		{Type: DiffTypeEdited, Name: "check", Fields: []*FieldDiff{{Type: DiffTypeEdited, Name: "path", Old: "/", New: "/health"}}},
	}}}, g.Objects)
}

func TestJobDiff_Annotate(t *testing.T) {
	d := DiffJobs(diffJob(), diffJob())
	d.Annotate(&PlanAnnotations{DesiredTGUpdates: map[string]*DesiredUpdates{
		"frontend": {Place: 2, InPlaceUpdate: 1, DestructiveUpdate: 3, Stop: 1, Ignore: 4, Reschedule: 1, RescheduleLater: 1},
		"gone":     {Stop: 2},
	}})
	require.Equal(t, map[string]int{
		UpdateTypeCreate: 2, UpdateTypeInPlaceUpdate: 1, UpdateTypeDestructiveUpdate: 3,
		UpdateTypeStop: 1, UpdateTypeIgnore: 4, UpdateTypeReschedule: 2,
	}, d.Groups[0].Updates)
	var nilDiff *JobDiff
	nilDiff.Annotate(&PlanAnnotations{}) // no panic
	d.Annotate(nil)
}
