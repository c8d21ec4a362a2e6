// Package mock builds valid objects for tests: every function returns a
// fresh object that passes validation, so a test changes only what it is
// about.
package mock

import (
	"fmt"
	"time"

	"github.com/drover-sh/drover/structs"
)

// Node returns a ready, eligible node in dc1 with 4 cores (4,000 MHz),
// 8 GiB of memory and a healthy containerd driver.
func Node() *structs.Node {
	id := structs.GenerateUUID()
	return &structs.Node{
		ID:         id,
		Name:       "node-" + id[:8],
		Datacenter: "dc1",
		NodeClass:  "",
		HTTPAddr:   "127.0.0.1:4750",
		Attributes: map[string]string{
			"kernel.name":     "linux",
			"cpu.arch":        "amd64",
			"os.name":         "debian",
			"unique.hostname": "host-" + id[:8],
			"drover.version":  structs.Version,
		},
		Meta: map[string]string{"rack": "r1"},
		Resources: &structs.NodeResources{
			CPU: 4000, Memory: 8192, Cores: 4,
			MinDynamicPort: 20000, MaxDynamicPort: 32000,
		},
		Reserved: &structs.NodeResources{CPU: 100, Memory: 256},
		Drivers: map[string]*structs.DriverInfo{
			"containerd": {Detected: true, Healthy: true, HealthDescription: "healthy"},
		},
		Status:                structs.NodeStatusReady,
		SchedulingEligibility: structs.NodeEligible,
	}
}

// Job returns a canonical service job "web-<random>" with one group of
// count 10, one task asking 500 MHz and 256 MiB, and a dynamic port.
func Job() *structs.Job {
	id := structs.GenerateUUID()
	j := &structs.Job{
		ID:          "web-" + id[:8],
		Namespace:   structs.DefaultNamespace,
		Type:        structs.JobTypeService,
		Priority:    50,
		Datacenters: []string{"dc1"},
		Groups: []*structs.TaskGroup{{
			Name:  "web",
			Count: 10,
			Network: &structs.NetworkSpec{
				Mode:  structs.NetworkModeBridge,
				Ports: []*structs.Port{{Label: "http", To: 8080}},
			},
			Tasks: []*structs.Task{{
				Name:        "server",
				Image:       "127.0.0.1:5000/drover/busybox:latest",
				Command:     "/bin/httpd",
				Args:        []string{"-f", "-p", "8080"},
				Env:         map[string]string{"GREETING": "hello"},
				Resources:   &structs.Resources{CPU: 500, Memory: 256},
				KillTimeout: structs.Duration(5 * time.Second),
			}},
		}},
		Status: structs.JobStatusPending,
	}
	j.Canonicalize()
	return j
}

// BatchJob returns a canonical batch job with one group of count 10 and
// no network.
func BatchJob() *structs.Job {
	j := Job()
	j.ID = "batch-" + j.ID[len("web-"):]
	j.Type = structs.JobTypeBatch
	j.Update = nil
	g := j.Groups[0]
	g.Name = "work"
	g.Network = nil
	g.Update = nil
	g.Restart = structs.DefaultRestartPolicy(structs.JobTypeBatch)
	g.Reschedule = structs.DefaultReschedulePolicy(structs.JobTypeBatch)
	g.Tasks[0].Command = "/bin/true"
	g.Tasks[0].Args = nil
	g.Tasks[0].Resources = &structs.Resources{CPU: 100, Memory: 64}
	return j
}

// SystemJob returns a canonical system job: one allocation per node.
func SystemJob() *structs.Job {
	j := Job()
	j.ID = "system-" + j.ID[len("web-"):]
	j.Type = structs.JobTypeSystem
	j.Priority = 100
	j.Update = nil
	g := j.Groups[0]
	g.Name = "agent"
	g.Count = 1
	g.Network = &structs.NetworkSpec{Mode: structs.NetworkModeHost}
	g.Update = nil
	g.Reschedule = nil
	g.Tasks[0].Resources = &structs.Resources{CPU: 100, Memory: 64}
	return j
}

// Eval returns a pending evaluation of a service job.
func Eval() *structs.Evaluation {
	return &structs.Evaluation{
		ID:          structs.GenerateUUID(),
		Namespace:   structs.DefaultNamespace,
		Priority:    50,
		Type:        structs.JobTypeService,
		TriggeredBy: structs.EvalTriggerJobRegister,
		JobID:       structs.GenerateUUID(),
		Status:      structs.EvalStatusPending,
	}
}

// EvalFor returns a pending evaluation of job.
func EvalFor(job *structs.Job) *structs.Evaluation {
	e := Eval()
	e.Namespace = job.Namespace
	e.JobID = job.ID
	e.Type = job.Type
	e.Priority = job.Priority
	return e
}

// Alloc returns a running allocation of a fresh Job() on a fresh node ID,
// with the resources of the job's first group.
func Alloc() *structs.Allocation {
	return AllocFor(Job(), structs.GenerateUUID(), 0)
}

// AllocFor returns a pending allocation of the index-th instance of job's
// first group on node.
func AllocFor(job *structs.Job, nodeID string, index int) *structs.Allocation {
	g := job.Groups[0]
	res := &structs.AllocatedResources{Tasks: make(map[string]*structs.Resources, len(g.Tasks))}
	for _, t := range g.Tasks {
		r := *t.Resources
		res.Tasks[t.Name] = &r
	}
	return &structs.Allocation{
		ID:            structs.GenerateUUID(),
		Namespace:     job.Namespace,
		EvalID:        structs.GenerateUUID(),
		Name:          fmt.Sprintf("%s.%s[%d]", job.ID, g.Name, index),
		NodeID:        nodeID,
		JobID:         job.ID,
		Job:           job,
		TaskGroup:     g.Name,
		Resources:     res,
		DesiredStatus: structs.AllocDesiredRun,
		ClientStatus:  structs.AllocClientPending,
	}
}
