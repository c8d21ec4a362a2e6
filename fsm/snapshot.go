package fsm

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"

	"github.com/drover-sh/drover/structs"
)

// A snapshot is a header (magic, format version) followed by records, each
// a record type byte and one msgpack object, and an end record. The end
// record tells a complete snapshot from one cut short at a record boundary.
const (
	snapshotMagic   = "DROVERSS"
	snapshotVersion = 1
)

// recordType says which table a snapshot record belongs to. Like message
// types, the list is append-only.
type recordType uint8

const (
	indexRecord recordType = iota + 1
	jobRecord
	jobVersionRecord
	evalRecord
	nodeRecord
	allocRecord
	deploymentRecord
	serviceRecord

	endRecord recordType = 0xff
)

// snapshotTable maps a record type to its table and to a fresh object to
// decode into. Persist writes the tables in this order.
type snapshotTable struct {
	record recordType
	table  string
	alloc  func() any
}

var snapshotTables = []snapshotTable{
	{indexRecord, tableIndex, func() any { return new(indexEntry) }},
	{jobRecord, tableJobs, func() any { return new(structs.Job) }},
	{jobVersionRecord, tableJobVersions, func() any { return new(structs.Job) }},
	{evalRecord, tableEvals, func() any { return new(structs.Evaluation) }},
	{nodeRecord, tableNodes, func() any { return new(structs.Node) }},
	{allocRecord, tableAllocs, func() any { return new(structs.Allocation) }},
	{deploymentRecord, tableDeployments, func() any { return new(structs.Deployment) }},
	{serviceRecord, tableServices, func() any { return new(structs.ServiceRegistration) }},
}

func snapshotTableOf(t recordType) *snapshotTable {
	for i := range snapshotTables {
		if snapshotTables[i].record == t {
			return &snapshotTables[i]
		}
	}
	return nil
}

// Snapshot captures the store as of now. It only opens a read transaction,
// so Raft can keep applying while Persist streams the old state out.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{txn: f.State().db.Txn(false)}, nil
}

type fsmSnapshot struct {
	txn *memdb.Txn
}

// Persist streams the snapshot to sink, cancelling the sink on failure so
// Raft never keeps a partial snapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := writeSnapshot(sink, s.txn); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persisting snapshot: %w", err)
	}
	return sink.Close()
}

// Release is a no-op: a read transaction holds no locks.
func (s *fsmSnapshot) Release() {}

func writeSnapshot(w io.Writer, txn *memdb.Txn) error {
	bw := bufio.NewWriter(w)
	if _, err := bw.WriteString(snapshotMagic); err != nil {
		return err
	}
	if err := bw.WriteByte(snapshotVersion); err != nil {
		return err
	}
	// The encoder flushes into bw after every object, so record type bytes
	// written straight to bw interleave correctly.
	enc := codec.NewEncoder(bw, structs.MsgpackHandle())
	for _, st := range snapshotTables {
		it, err := txn.Get(st.table, "id")
		if err != nil {
			return fmt.Errorf("reading table %s: %w", st.table, err)
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			if err := bw.WriteByte(byte(st.record)); err != nil {
				return err
			}
			if err := enc.Encode(raw); err != nil {
				return fmt.Errorf("encoding a %s record: %w", st.table, err)
			}
		}
	}
	if err := bw.WriteByte(byte(endRecord)); err != nil {
		return err
	}
	return bw.Flush()
}

// Restore replaces the store with the snapshot in r. The new store is built
// aside and swapped in whole, then the old one is abandoned so queries
// blocked on it wake and read the new one; on error the old store stays.
func (f *FSM) Restore(r io.ReadCloser) error {
	defer r.Close()
	db, err := readSnapshot(r)
	if err != nil {
		return fmt.Errorf("restoring snapshot: %w", err)
	}
	store := newStateStore(db)
	old := f.state.Swap(store)
	old.abandon(store)
	return nil
}

func readSnapshot(r io.Reader) (*memdb.MemDB, error) {
	br := bufio.NewReader(r)
	header := make([]byte, len(snapshotMagic)+1)
	if _, err := io.ReadFull(br, header); err != nil {
		return nil, fmt.Errorf("reading header: %w", err)
	}
	if string(header[:len(snapshotMagic)]) != snapshotMagic {
		return nil, errors.New("not a drover snapshot (bad magic)")
	}
	if v := header[len(snapshotMagic)]; v != snapshotVersion {
		return nil, fmt.Errorf("snapshot format version %d is not supported (want %d)", v, snapshotVersion)
	}

	db, err := newMemDB()
	if err != nil {
		return nil, err
	}
	txn := db.Txn(true)
	defer txn.Abort()
	// The decoder reads through br's ByteScanner and never past the end of
	// an object, so record type bytes can be read from br between objects.
	dec := codec.NewDecoder(br, structs.MsgpackHandle())
	for n := 0; ; n++ {
		b, err := br.ReadByte()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("snapshot ends after %d records without its end record", n)
		}
		if err != nil {
			return nil, err
		}
		if recordType(b) == endRecord {
			break
		}
		st := snapshotTableOf(recordType(b))
		if st == nil {
			return nil, fmt.Errorf("record %d has unknown type %d", n, b)
		}
		obj := st.alloc()
		if err := dec.Decode(obj); err != nil {
			return nil, fmt.Errorf("decoding record %d (%s): %w", n, st.table, err)
		}
		if err := txn.Insert(st.table, obj); err != nil {
			return nil, fmt.Errorf("inserting record %d (%s): %w", n, st.table, err)
		}
	}
	if err := rebuildNodeUsageTxn(txn); err != nil {
		return nil, err
	}
	txn.Commit()
	return db, nil
}
