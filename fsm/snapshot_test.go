package fsm

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

// populate writes something to every table, through Apply where a message
// type exists and through the store otherwise.
func populate(t *testing.T, f *FSM) {
	t.Helper()
	s := f.State()
	for i, key := range [][2]string{{"default", "web"}, {"default", "api"}, {"other", "web"}} {
		job := mockJob(key[0], key[1])
		applyOK(t, f, entry(t, uint64(10+i), structs.JobRegisterRequestType, &structs.JobRegisterRequest{
			Job: job, Eval: mockEval(job, evalID(i)), SubmitTime: int64(i),
		}))
	}
	changed := mockJob("default", "web")
	changed.Groups[0].Count = 3
	applyOK(t, f, entry(t, 20, structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: changed}))
	applyOK(t, f, entry(t, 21, structs.JobDeregisterRequestType, &structs.JobDeregisterRequest{JobID: "api"}))

	require.NoError(t, s.UpsertNode(22, mockNode("n-1")))
	web, err := s.JobByID(nil, "default", "web")
	require.NoError(t, err)
	alloc := mockAlloc(web, "a-1", "n-1", evalID(0))
	healthy := true
	alloc.DeploymentID = "d-1"
	alloc.DeploymentStatus = &structs.AllocDeploymentStatus{Healthy: &healthy}
	alloc.ClientStatus = structs.AllocClientRunning
	require.NoError(t, s.UpsertAllocs(23, []*structs.Allocation{alloc}))
	require.NoError(t, s.UpsertDeployment(24, mockDeployment(web, "d-1")))
	applyOK(t, f, entry(t, 25, structs.ServiceRegistrationUpsertRequestType, &structs.ServiceRegistrationUpsertRequest{
		Services: []*structs.ServiceRegistration{mockService(alloc, "web", "http")},
	}))
}

func TestSnapshotRestore_RoundTrip(t *testing.T) {
	src := newTestFSM(t)
	populate(t, src)
	sink := persist(t, src)
	require.False(t, sink.cancelled)

	dst := newTestFSM(t)
	restoreInto(t, dst, sink)
	want, got := dump(t, src.State()), dump(t, dst.State())
	for _, table := range append([]string{tableIndex}, tables...) {
		require.NotEmpty(t, want[table], "fixture leaves table %s empty", table)
	}
	require.Equal(t, want, got)
	require.Equal(t, uint64(25), dst.State().LatestIndex())

	// The restored store keeps working: versions continue, reads agree.
	changed := mockJob("default", "web")
	changed.Groups[0].Count = 4
	applyOK(t, dst, entry(t, 30, structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: changed}))
	versions, err := dst.State().JobVersionsByID(nil, "default", "web")
	require.NoError(t, err)
	require.Len(t, versions, 3)
	require.Equal(t, uint64(2), versions[0].Version)
}

func TestSnapshot_IsPointInTime(t *testing.T) {
	f := newTestFSM(t)
	populate(t, f)
	snap, err := f.Snapshot()
	require.NoError(t, err)
	want := dump(t, f.State())

	// Raft keeps applying while Persist runs.
	applyOK(t, f, entry(t, 40, structs.JobDeregisterRequestType, &structs.JobDeregisterRequest{JobID: "web", Purge: true}))

	sink := &memSink{}
	require.NoError(t, snap.Persist(sink))
	snap.Release()
	dst := newTestFSM(t)
	restoreInto(t, dst, sink)
	require.Equal(t, want, dump(t, dst.State()))
}

func TestRestore_ReplacesStoreAndAbandonsOld(t *testing.T) {
	src := newTestFSM(t)
	job := mockJob("default", "from-snapshot")
	applyOK(t, src, entry(t, 5, structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: job}))
	sink := persist(t, src)

	f := newTestFSM(t)
	populate(t, f)
	old := f.State()
	restoreInto(t, f, sink)

	require.NotSame(t, old, f.State())
	select {
	case <-old.AbandonCh():
	default:
		t.Fatal("the replaced store's AbandonCh is still open")
	}
	require.Equal(t, dump(t, src.State()), dump(t, f.State()), "nothing of the old state survives")
}

func TestRestore_WakesBlockedQuery(t *testing.T) {
	f := newTestFSM(t)
	applyOK(t, f, entry(t, 5, structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: mockJob("default", "web")}))

	src := newTestFSM(t)
	applyOK(t, src, entry(t, 5, structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: mockJob("default", "web")}))
	changed := mockJob("default", "web")
	changed.Groups[0].Count = 7
	applyOK(t, src, entry(t, 9, structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: changed}))
	sink := persist(t, src)

	var runs atomic.Int32
	var job *structs.Job
	done := runQuery(f.State(), context.Background(), 5, time.Minute, jobQuery(&runs, &job))
	waitRuns(t, &runs, 1)
	restoreInto(t, f, sink)

	r := waitResult(t, done, 5*time.Second)
	require.NoError(t, r.err)
	require.Equal(t, uint64(9), r.index)
	require.Equal(t, 7, job.Groups[0].Count, "the query re-ran against the restored store")
}

func TestRestore_RejectsBadSnapshots(t *testing.T) {
	src := newTestFSM(t)
	populate(t, src)
	good := persist(t, src).Bytes()

	cases := map[string][]byte{
		"empty":          nil,
		"bad magic":      append([]byte("NOTDROVR"), good[8:]...),
		"newer format":   append(append([]byte(snapshotMagic), snapshotVersion+1), good[9:]...),
		"truncated":      good[:len(good)-1],
		"cut mid-record": good[:len(good)/2],
		"unknown record": append(append([]byte(snapshotMagic), snapshotVersion), 0x42, 0xc0),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			f := newTestFSM(t)
			populate(t, f)
			before := f.State()
			err := f.Restore(nopCloser{bytes.NewReader(data)})
			require.Error(t, err)
			require.Same(t, before, f.State(), "a failed restore keeps the old store")
			select {
			case <-before.AbandonCh():
				t.Fatal("a failed restore abandoned the store")
			default:
			}
		})
	}
}

type failingSink struct {
	memSink
	failAfter int
}

func (s *failingSink) Write(p []byte) (int, error) {
	if s.Len()+len(p) > s.failAfter {
		return 0, errors.New("disk full")
	}
	return s.memSink.Write(p)
}

func TestPersist_CancelsSinkOnError(t *testing.T) {
	f := newTestFSM(t)
	populate(t, f)
	snap, err := f.Snapshot()
	require.NoError(t, err)
	sink := &failingSink{failAfter: 10}
	require.ErrorContains(t, snap.Persist(sink), "disk full")
	require.True(t, sink.cancelled)
	require.False(t, sink.closed)
}
