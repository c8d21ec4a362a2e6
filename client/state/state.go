// Package state is the client's local database (bbolt): the allocations a
// node runs, as received from the servers, and per task what a restarted
// agent needs to find and judge it again (its state, its runtime handle,
// its restart counters). Nothing here is shared with other nodes.
package state

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"go.etcd.io/bbolt"

	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/structs"
)

// Layout: allocs/<alloc_id>/{alloc, network, task/<name>}; meta/<key>.
var (
	bucketAllocs = []byte("allocs")
	bucketMeta   = []byte("meta")
	bucketTasks  = []byte("task")
	keyAlloc     = []byte("alloc")
	keyNetwork   = []byte("network")
)

// TaskState is one task's local record.
type TaskState struct {
	State *structs.TaskState
	// Handle is set while a container exists for the task.
	Handle *driver.TaskHandle
	// Restart counters: attempts used in the window that began at
	// WindowStart (restart policy), and when the next start is due while
	// the task waits out a restart delay.
	RestartCount int
	WindowStart  time.Time
	RestartAt    time.Time
}

// NetworkState is what the alloc's network setup returned, kept so a
// restarted agent can tear it down or hand it to restarted tasks.
type NetworkState struct {
	NetNSPath string
	Data      map[string]string
}

// DB is the client's state database.
type DB struct {
	bolt *bbolt.DB
}

// Open opens (creating) the database at path.
func Open(path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating client state dir: %w", err)
	}
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("opening client state %s: %w", path, err)
	}
	err = b.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketAllocs, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("initialising client state %s: %w", path, err)
	}
	return &DB{bolt: b}, nil
}

// Close closes the database.
func (d *DB) Close() error { return d.bolt.Close() }

func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := codec.NewEncoder(&buf, structs.MsgpackHandle()).Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decode(b []byte, v any) error {
	return codec.NewDecoderBytes(b, structs.MsgpackHandle()).Decode(v)
}

// allocBucket returns the bucket of one allocation, created on write.
func allocBucket(tx *bbolt.Tx, allocID string, create bool) (*bbolt.Bucket, error) {
	allocs := tx.Bucket(bucketAllocs)
	if !create {
		return allocs.Bucket([]byte(allocID)), nil
	}
	return allocs.CreateBucketIfNotExists([]byte(allocID))
}

// PutAlloc stores the allocation as received from the servers.
func (d *DB) PutAlloc(a *structs.Allocation) error {
	b, err := encode(a)
	if err != nil {
		return fmt.Errorf("encoding allocation %s: %w", a.ID, err)
	}
	err = d.bolt.Batch(func(tx *bbolt.Tx) error {
		bkt, err := allocBucket(tx, a.ID, true)
		if err != nil {
			return err
		}
		return bkt.Put(keyAlloc, b)
	})
	if err != nil {
		return fmt.Errorf("storing allocation %s: %w", a.ID, err)
	}
	return nil
}

// PutNetwork stores the allocation's network state.
func (d *DB) PutNetwork(allocID string, n *NetworkState) error {
	b, err := encode(n)
	if err != nil {
		return fmt.Errorf("encoding network of allocation %s: %w", allocID, err)
	}
	err = d.bolt.Batch(func(tx *bbolt.Tx) error {
		bkt, err := allocBucket(tx, allocID, true)
		if err != nil {
			return err
		}
		return bkt.Put(keyNetwork, b)
	})
	if err != nil {
		return fmt.Errorf("storing network of allocation %s: %w", allocID, err)
	}
	return nil
}

// PutTask stores one task's local state.
func (d *DB) PutTask(allocID, task string, ts *TaskState) error {
	b, err := encode(ts)
	if err != nil {
		return fmt.Errorf("encoding task %s of allocation %s: %w", task, allocID, err)
	}
	err = d.bolt.Batch(func(tx *bbolt.Tx) error {
		bkt, err := allocBucket(tx, allocID, true)
		if err != nil {
			return err
		}
		tasks, err := bkt.CreateBucketIfNotExists(bucketTasks)
		if err != nil {
			return err
		}
		return tasks.Put([]byte(task), b)
	})
	if err != nil {
		return fmt.Errorf("storing task %s of allocation %s: %w", task, allocID, err)
	}
	return nil
}

// DeleteAlloc removes an allocation and its tasks; a missing one is not
// an error.
func (d *DB) DeleteAlloc(allocID string) error {
	err := d.bolt.Batch(func(tx *bbolt.Tx) error {
		err := tx.Bucket(bucketAllocs).DeleteBucket([]byte(allocID))
		if errors.Is(err, bbolt.ErrBucketNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("deleting allocation %s: %w", allocID, err)
	}
	return nil
}

// Alloc is everything stored about one allocation.
type Alloc struct {
	Alloc   *structs.Allocation
	Network *NetworkState
	Tasks   map[string]*TaskState
}

// Allocs loads every stored allocation. An entry that cannot be decoded
// is returned in errs (by allocation ID) and left out, so one bad record
// does not keep a node from recovering the rest.
func (d *DB) Allocs() (out []*Alloc, errs map[string]error, err error) {
	errs = make(map[string]error)
	err = d.bolt.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketAllocs).ForEachBucket(func(k []byte) error {
			id := string(k)
			bkt := tx.Bucket(bucketAllocs).Bucket(k)
			raw := bkt.Get(keyAlloc)
			if raw == nil {
				errs[id] = fmt.Errorf("allocation %s: task state without the allocation", id)
				return nil
			}
			a := &Alloc{Tasks: make(map[string]*TaskState)}
			if err := decode(raw, &a.Alloc); err != nil {
				errs[id] = fmt.Errorf("decoding allocation %s: %w", id, err)
				return nil
			}
			if raw := bkt.Get(keyNetwork); raw != nil {
				if err := decode(raw, &a.Network); err != nil {
					errs[id] = fmt.Errorf("decoding network of allocation %s: %w", id, err)
					return nil
				}
			}
			if tasks := bkt.Bucket(bucketTasks); tasks != nil {
				err := tasks.ForEach(func(name, raw []byte) error {
					var ts TaskState
					if err := decode(raw, &ts); err != nil {
						return fmt.Errorf("decoding task %s of allocation %s: %w", name, id, err)
					}
					a.Tasks[string(name)] = &ts
					return nil
				})
				if err != nil {
					errs[id] = err
					return nil
				}
			}
			out = append(out, a)
			return nil
		})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("loading client state: %w", err)
	}
	return out, errs, nil
}

// PutMeta stores a node-level value (the node ID).
func (d *DB) PutMeta(key, value string) error {
	err := d.bolt.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketMeta).Put([]byte(key), []byte(value))
	})
	if err != nil {
		return fmt.Errorf("storing %s: %w", key, err)
	}
	return nil
}

// GetMeta reads a node-level value; "" when unset.
func (d *DB) GetMeta(key string) (string, error) {
	var v string
	err := d.bolt.View(func(tx *bbolt.Tx) error {
		v = string(tx.Bucket(bucketMeta).Get([]byte(key)))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", key, err)
	}
	return v, nil
}
