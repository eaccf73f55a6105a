package bolt_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"
	"go.uber.org/goleak"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/store/bolt"
	"github.com/zkpaas/paas/store/storetest"
)

// TestMain checks that no test leaks a goroutine, as goleak.VerifyTestMain does, and removes
// the files that the benchmarks share.
func TestMain(m *testing.M) {
	code := m.Run()
	if err := removeBacklogs(); err != nil {
		fmt.Fprintln(os.Stderr, "remove benchmark files:", err)
		code = max(code, 1)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak: errors on successful test run:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// fast skips the fsync of every commit: these tests check logic, not the disk, and reopening
// a file in the same process reads the page cache either way. The durability tests use the
// default options.
var fast = &bolt.Options{NoSync: true}

// openT opens the store at path and closes it when the test ends.
func openT(t testing.TB, path string, opts *bolt.Options) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path, opts)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	return s
}

func tempPath(t testing.TB) string { return filepath.Join(t.TempDir(), "tasks.db") }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) paas.TaskStore { return openT(t, tempPath(t), fast) })
}

// The suite again, through a Faulty with nothing arranged: the wrapper the service tests use
// must be faithful over this store's WriteBatch too.
func TestConformanceThroughFaulty(t *testing.T) {
	storetest.Run(t, func(t *testing.T) paas.TaskStore {
		return storetest.NewFaulty(openT(t, tempPath(t), fast))
	})
}

func TestClosed(t *testing.T) {
	ctx := t.Context()
	s, err := bolt.Open(tempPath(t), fast)
	require.NoError(t, err)
	rec, err := s.Insert(ctx, storetest.NewRecord("a"))
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close must be idempotent")

	_, err = s.Insert(ctx, storetest.NewRecord("b"))
	require.ErrorIs(t, err, paas.ErrStoreClosed, "Insert")
	require.ErrorIs(t, s.Update(ctx, rec), paas.ErrStoreClosed, "Update")
	_, err = s.Get(ctx, rec.ID)
	require.ErrorIs(t, err, paas.ErrStoreClosed, "Get")
	_, err = s.Unfinished(ctx)
	require.ErrorIs(t, err, paas.ErrStoreClosed, "Unfinished")
	results := s.WriteBatch(ctx, []paas.Write{{Insert: true, Record: storetest.NewRecord("c")}, {Record: rec}})
	require.Len(t, results, 2)
	for i, r := range results {
		require.ErrorIs(t, r.Err, paas.ErrStoreClosed, "WriteBatch write %d", i)
	}
	n, err := s.Prune(ctx, time.Now())
	require.ErrorIs(t, err, paas.ErrStoreClosed, "Prune")
	require.Zero(t, n)
	require.ErrorIs(t, s.StoreProof(ctx, rec.ID, paas.Proof{}), paas.ErrStoreClosed, "StoreProof")
	require.ErrorIs(t, s.DeleteProof(ctx, rec.ID), paas.ErrStoreClosed, "DeleteProof")
	_, err = s.Proof(ctx, rec.ID)
	require.ErrorIs(t, err, paas.ErrStoreClosed, "Proof")
}

// Close while writers are busy: every write either fails with ErrStoreClosed or was
// acknowledged, and every acknowledged one is in the file afterwards.
func TestCloseDuringWrites(t *testing.T) {
	const writers = 8
	ctx := t.Context()
	path := tempPath(t)
	s, err := bolt.Open(path, fast)
	require.NoError(t, err)

	var (
		mu    sync.Mutex
		acked []paas.TaskRecord
	)
	var wg, started sync.WaitGroup
	started.Add(writers)
	for w := range writers {
		wg.Go(func() {
			first := true
			for i := 0; ; i++ {
				rec := storetest.NewRecord(fmt.Sprintf("writer %d, task %d", w, i))
				var err error
				if w%2 == 0 {
					rec, err = s.Insert(ctx, rec)
				} else {
					r := s.WriteBatch(ctx, []paas.Write{{Insert: true, Record: rec}})[0]
					rec.Seq, err = r.Seq, r.Err
				}
				if err != nil {
					assert.ErrorIs(t, err, paas.ErrStoreClosed)
					if first {
						started.Done()
					}
					return
				}
				mu.Lock()
				acked = append(acked, rec)
				mu.Unlock()
				if first {
					first = false
					started.Done()
				}
			}
		})
	}
	started.Wait() // every writer has had a write acknowledged
	require.NoError(t, s.Close())
	wg.Wait()

	s = openT(t, path, fast)
	unfinished, err := s.Unfinished(ctx)
	require.NoError(t, err)
	require.Len(t, unfinished, len(acked), "exactly the acknowledged writes must be stored")
	for _, rec := range acked {
		got, err := s.Get(ctx, rec.ID)
		require.NoError(t, err)
		storetest.RequireRecordEqual(t, rec, got)
	}
}

// withRawDB opens the file at path with bbolt directly, runs fn in a write transaction, and
// closes it: how the tests damage a file the way a disk or a bug could.
func withRawDB(t *testing.T, path string, fn func(tx *bbolt.Tx) error) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	require.NoError(t, db.Update(fn))
}

func ids(recs []paas.TaskRecord) []paas.TaskID {
	out := make([]paas.TaskID, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }
