package bolt_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"
	"go.uber.org/goleak"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/store/bolt"
	"github.com/zkpaas/paas/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

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

func TestReopenPersists(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	s, err := bolt.Open(path, nil) // the default, syncing options: this is the durability test
	require.NoError(t, err)

	a, err := s.Insert(ctx, storetest.NewRecord("a"))
	require.NoError(t, err)
	b, err := s.Insert(ctx, storetest.NewRecord("b"))
	require.NoError(t, err)
	c := storetest.NewRecord("c")
	a.State, a.Attempts, a.LastError = paas.Retrying, 1, "busy"
	a.NextAttemptAt = a.UpdatedAt.Add(time.Minute)
	b.State = paas.Completed
	results := s.WriteBatch(ctx, []paas.Write{{Insert: true, Record: c}, {Record: a}, {Record: b}})
	for i, r := range results {
		require.NoError(t, r.Err, "write %d", i)
	}
	c = results[0].Record
	proof := handler.Proof{Backend: paas.BackendSP1, Receipt: []byte("receipt"), PublicValues: []byte("55")}
	require.NoError(t, s.StoreProof(ctx, b.ID, proof))
	require.NoError(t, s.Close())

	s = openT(t, path, nil)
	for _, want := range []paas.TaskRecord{a, b, c} {
		got, err := s.Get(ctx, want.ID)
		require.NoError(t, err)
		storetest.RequireRecordEqual(t, want, got)
	}
	unfinished, err := s.Unfinished(ctx)
	require.NoError(t, err)
	require.Equal(t, []paas.TaskID{a.ID, c.ID}, ids(unfinished))
	gotProof, err := s.Proof(ctx, b.ID)
	require.NoError(t, err)
	require.Equal(t, proof, gotProof)

	dup, err := s.Insert(ctx, storetest.NewRecord("b"))
	require.NoError(t, err)
	require.Equal(t, b.ID, dup.ID, "the key index must survive a reopen")
	d, err := s.Insert(ctx, storetest.NewRecord("d"))
	require.NoError(t, err)
	require.Greater(t, d.Seq, c.Seq, "Seq must keep increasing across a reopen")
}

// The index must hold one entry for every task, keyed by Seq, flagged finished exactly when
// the task is final: Unfinished trusts the flag and reads the records of the others only.
func TestIndex(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	s, err := bolt.Open(path, fast)
	require.NoError(t, err)
	var want []paas.TaskRecord
	for i, state := range slices.Concat(paas.States, paas.States) {
		rec, err := s.Insert(ctx, storetest.NewRecord(fmt.Sprint(i)))
		require.NoError(t, err)
		rec.State = state
		require.NoError(t, s.Update(ctx, rec))
		want = append(want, rec)
	}
	// A final task moved back to unfinished, and finished again: the flag follows.
	back := want[slices.IndexFunc(want, func(r paas.TaskRecord) bool { return r.State.Final() })]
	back.State = paas.Retrying
	require.NoError(t, s.Update(ctx, back))
	again := want[slices.IndexFunc(want, func(r paas.TaskRecord) bool { return r.State.Final() && r.ID != back.ID })]
	again.State = paas.Pending
	require.NoError(t, s.Update(ctx, again))
	again.State = paas.Failed
	require.NoError(t, s.Update(ctx, again))
	for i := range want {
		switch want[i].ID {
		case back.ID:
			want[i] = back
		case again.ID:
			want[i] = again
		}
	}
	require.NoError(t, s.Close())

	var got []bolt.IndexEntry
	withRawDB(t, path, func(tx *bbolt.Tx) error {
		return tx.Bucket(bolt.BucketIndex).ForEach(func(k, v []byte) error {
			e, err := bolt.DecodeIndexEntry(k, v)
			require.NoError(t, err)
			got = append(got, e)
			return nil
		})
	})
	require.Len(t, got, len(want))
	for i, rec := range want {
		require.Equal(t, bolt.IndexEntry{Seq: rec.Seq, Finished: rec.State.Final(), ID: rec.ID, Key: rec.Key}, got[i],
			"index entry of seq %d (%s)", rec.Seq, rec.State)
	}
}

// An update rewrites a task's index entry only when the task moves between unfinished and
// final: the other updates, most of them, write the record alone.
func TestIndexRewrittenOnlyWhenFinishedChanges(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	s, err := bolt.Open(path, fast)
	require.NoError(t, err)
	// Enough entries that the index bucket has a page of its own, not inline in its parent,
	// so that its root page tells whether a transaction wrote it.
	var recs []paas.TaskRecord
	for i := range 40 {
		rec, err := s.Insert(ctx, storetest.NewRecord(fmt.Sprint(i)))
		require.NoError(t, err)
		recs = append(recs, rec)
	}
	require.NoError(t, s.Close())

	roots := func() (index, tasks uint64) {
		withRawDB(t, path, func(tx *bbolt.Tx) error {
			index, tasks = uint64(tx.Bucket(bolt.BucketIndex).Root()), uint64(tx.Bucket(bolt.BucketTasks).Root())
			return nil
		})
		require.NotZero(t, index, "the index bucket is inline: the test needs more tasks")
		return index, tasks
	}
	update := func(state paas.TaskState) {
		t.Helper()
		s := openT(t, path, fast)
		recs[7].State = state
		require.NoError(t, s.Update(ctx, recs[7]))
		require.NoError(t, s.Close())
	}

	index, tasks := roots()
	for _, state := range []paas.TaskState{paas.InProgress, paas.Retrying, paas.InProgress} {
		update(state)
		newIndex, newTasks := roots()
		require.NotEqual(t, tasks, newTasks, "the record is written")
		require.Equal(t, index, newIndex, "an update to %s must not write the index", state)
		tasks = newTasks
	}
	update(paas.Completed)
	newIndex, _ := roots()
	require.NotEqual(t, index, newIndex, "an update that finishes the task must write the index")
	index = newIndex
	update(paas.Failed)
	newIndex, _ = roots()
	require.Equal(t, index, newIndex, "an update from one final state to another must not write the index")
}

func TestProofs(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	s, err := bolt.Open(path, fast)
	require.NoError(t, err)

	id, native := paas.NewTaskID(), paas.NewTaskID()
	first := handler.Proof{Backend: paas.BackendSP1, Receipt: []byte("r1"), PublicValues: []byte("55")}
	again := handler.Proof{Backend: paas.BackendSP1, Receipt: []byte("r2"), PublicValues: []byte("55")}
	require.NoError(t, s.StoreProof(ctx, id, first))
	require.NoError(t, s.StoreProof(ctx, id, first), "storing the same proof again must succeed")
	require.NoError(t, s.StoreProof(ctx, id, again), "a re-run attempt may store a new receipt")
	require.NoError(t, s.StoreProof(ctx, native, handler.Proof{Backend: paas.BackendNative, PublicValues: []byte("1")}))

	got, err := s.Proof(ctx, id)
	require.NoError(t, err)
	require.Equal(t, again, got, "the last proof stored wins")
	got.Receipt[0] = 'X' // must not reach the store
	got, err = s.Proof(ctx, id)
	require.NoError(t, err)
	require.Equal(t, again, got)

	unknown := paas.NewTaskID()
	_, err = s.Proof(ctx, unknown)
	require.ErrorIs(t, err, bolt.ErrProofNotFound)
	require.ErrorContains(t, err, unknown.String())

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, s.StoreProof(cancelled, unknown, first), context.Canceled)
	_, err = s.Proof(cancelled, id)
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, s.Close())

	s = openT(t, path, fast)
	got, err = s.Proof(ctx, id)
	require.NoError(t, err)
	require.Equal(t, again, got, "proofs must survive a reopen")
	got, err = s.Proof(ctx, native)
	require.NoError(t, err)
	require.Nil(t, got.Receipt, "a native proof has no receipt, and reads back without one")
	_, err = s.Proof(ctx, unknown)
	require.ErrorIs(t, err, bolt.ErrProofNotFound, "a proof stored under a cancelled context must not exist")
}

func TestCorruptRecord(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state paas.TaskState
		// damage returns the bytes to store in place of the record of rec, given its stored form.
		damage func(rec paas.TaskRecord, stored []byte) []byte
	}{
		{"Garbage", paas.Pending, func(paas.TaskRecord, []byte) []byte { return []byte("not a record") }},
		{"Empty", paas.Pending, func(paas.TaskRecord, []byte) []byte { return []byte{} }},
		{"UnknownVersion", paas.InProgress, func(_ paas.TaskRecord, b []byte) []byte {
			return append([]byte{99}, b[1:]...)
		}},
		{"Truncated", paas.Retrying, func(_ paas.TaskRecord, b []byte) []byte { return b[:len(b)/2] }},
		{"FlippedBit", paas.Pending, func(_ paas.TaskRecord, b []byte) []byte {
			b = append([]byte(nil), b...)
			b[len(b)/2] ^= 0x10
			return b
		}},
		{"OtherTasksRecord", paas.Pending, func(rec paas.TaskRecord, _ []byte) []byte {
			rec.ID = paas.NewTaskID()
			b, err := bolt.EncodeRecord(rec)
			if err != nil {
				panic(err)
			}
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			path := tempPath(t)
			s, err := bolt.Open(path, fast)
			require.NoError(t, err)
			rec, err := s.Insert(ctx, storetest.NewRecord("victim"))
			require.NoError(t, err)
			if tc.state != paas.Pending {
				rec.State = tc.state
				require.NoError(t, s.Update(ctx, rec))
			}
			healthy, err := s.Insert(ctx, storetest.NewRecord("healthy"))
			require.NoError(t, err)
			require.NoError(t, s.Close())

			withRawDB(t, path, func(tx *bbolt.Tx) error {
				tasks := tx.Bucket(bolt.BucketTasks)
				stored := append([]byte(nil), tasks.Get(rec.ID[:])...)
				require.NotEmpty(t, stored)
				return tasks.Put(rec.ID[:], tc.damage(rec, stored))
			})

			s = openT(t, path, fast)
			requireCorrupt := func(err error, what string) {
				t.Helper()
				var corrupt *bolt.CorruptRecordError
				require.ErrorAs(t, err, &corrupt, what)
				require.Equal(t, rec.ID, corrupt.ID, what)
				require.ErrorContains(t, err, rec.ID.String(), "%s: the error must name the task", what)
			}
			_, err = s.Get(ctx, rec.ID)
			requireCorrupt(err, "Get")
			_, err = s.Unfinished(ctx)
			requireCorrupt(err, "Unfinished must fail rather than skip the task")
			requireCorrupt(s.Update(ctx, rec), "Update")
			_, err = s.Insert(ctx, storetest.NewRecord("victim"))
			requireCorrupt(err, "Insert of the damaged task's key")

			// The rest of the store still works.
			got, err := s.Get(ctx, healthy.ID)
			require.NoError(t, err)
			storetest.RequireRecordEqual(t, healthy, got)
		})
	}
}

// A damaged finished task is not needed to resume work, and Unfinished, which does not read
// the records of the tasks the index flags finished, does not trip over it; Get still reports it.
func TestCorruptFinishedRecord(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	s, err := bolt.Open(path, fast)
	require.NoError(t, err)
	done, err := s.Insert(ctx, storetest.NewRecord("done"))
	require.NoError(t, err)
	done.State = paas.Completed
	require.NoError(t, s.Update(ctx, done))
	pending, err := s.Insert(ctx, storetest.NewRecord("pending"))
	require.NoError(t, err)
	require.NoError(t, s.Close())

	withRawDB(t, path, func(tx *bbolt.Tx) error {
		return tx.Bucket(bolt.BucketTasks).Put(done.ID[:], []byte{1, 2, 3})
	})

	s = openT(t, path, fast)
	unfinished, err := s.Unfinished(ctx)
	require.NoError(t, err)
	require.Equal(t, []paas.TaskID{pending.ID}, ids(unfinished))
	_, err = s.Get(ctx, done.ID)
	var corrupt *bolt.CorruptRecordError
	require.ErrorAs(t, err, &corrupt)
	require.Equal(t, done.ID, corrupt.ID)
}

// An index entry that disagrees with the records is damage too, and must not be papered over:
// Unfinished fails, naming the task, rather than leave the task out or return it twice.
func TestCorruptIndex(t *testing.T) {
	ctx := t.Context()
	// Each damage gets the record of the victim, unfinished unless final says otherwise, and
	// that of another unfinished task inserted after it.
	for _, tc := range []struct {
		name   string
		final  bool
		damage func(t *testing.T, tx *bbolt.Tx, victim, other paas.TaskRecord)
	}{
		{"MissingTask", false, func(t *testing.T, tx *bbolt.Tx, victim, _ paas.TaskRecord) {
			require.NoError(t, tx.Bucket(bolt.BucketTasks).Delete(victim.ID[:]))
		}},
		{"WrongSeq", false, func(t *testing.T, tx *bbolt.Tx, victim, other paas.TaskRecord) {
			// The entries of the two tasks swapped: each names a task of another Seq.
			b := tx.Bucket(bolt.BucketIndex)
			require.NoError(t, b.Put(seqKey(other.Seq), bolt.EncodeIndexEntry(false, victim.ID, victim.Key)))
			require.NoError(t, b.Put(seqKey(victim.Seq), bolt.EncodeIndexEntry(false, other.ID, other.Key)))
		}},
		{"WrongKey", false, func(t *testing.T, tx *bbolt.Tx, victim, _ paas.TaskRecord) {
			require.NoError(t, tx.Bucket(bolt.BucketIndex).Put(seqKey(victim.Seq), bolt.EncodeIndexEntry(false, victim.ID, "another key")))
		}},
		{"FlaggedUnfinishedRecordFinal", true, func(t *testing.T, tx *bbolt.Tx, victim, _ paas.TaskRecord) {
			require.NoError(t, tx.Bucket(bolt.BucketIndex).Put(seqKey(victim.Seq), bolt.EncodeIndexEntry(false, victim.ID, victim.Key)))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tempPath(t)
			s, err := bolt.Open(path, fast)
			require.NoError(t, err)
			victim, err := s.Insert(ctx, storetest.NewRecord("victim"))
			require.NoError(t, err)
			if tc.final {
				victim.State = paas.Completed
				require.NoError(t, s.Update(ctx, victim))
			}
			other, err := s.Insert(ctx, storetest.NewRecord("other"))
			require.NoError(t, err)
			require.NoError(t, s.Close())

			withRawDB(t, path, func(tx *bbolt.Tx) error { tc.damage(t, tx, victim, other); return nil })

			s = openT(t, path, fast)
			_, err = s.Unfinished(ctx)
			var corrupt *bolt.CorruptRecordError
			require.ErrorAs(t, err, &corrupt)
			wantID := victim.ID
			if tc.name == "WrongSeq" {
				wantID = other.ID // named by the first entry, the victim's Seq
			}
			require.Equal(t, wantID, corrupt.ID)
			require.ErrorContains(t, err, wantID.String())
		})
	}
}

// The converse of FlaggedUnfinishedRecordFinal above: an entry flagged finished for a task whose
// record is not final. Unfinished cannot see it, since it reads no record of a task flagged
// finished (the bucket comment in bolt.go says why), and leaves the task out. The entry is
// written with its checksum, so no flipped bit makes it: only a bug of the store could. What
// the store does check is the entry it replaces when the task finishes, and there it must
// report the damage rather than write over it.
func TestIndexFlaggedFinishedRecordUnfinished(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	s, err := bolt.Open(path, fast)
	require.NoError(t, err)
	victim, err := s.Insert(ctx, storetest.NewRecord("victim"))
	require.NoError(t, err)
	other, err := s.Insert(ctx, storetest.NewRecord("other"))
	require.NoError(t, err)
	require.NoError(t, s.Close())

	withRawDB(t, path, func(tx *bbolt.Tx) error {
		return tx.Bucket(bolt.BucketIndex).Put(seqKey(victim.Seq), bolt.EncodeIndexEntry(true, victim.ID, victim.Key))
	})

	s = openT(t, path, fast)
	unfinished, err := s.Unfinished(ctx)
	require.NoError(t, err)
	require.Equal(t, []paas.TaskID{other.ID}, ids(unfinished), "the documented limit: the flag is trusted")

	finished := victim
	finished.State = paas.Completed
	err = s.Update(ctx, finished)
	var corrupt *bolt.CorruptRecordError
	require.ErrorAs(t, err, &corrupt, "finishing the task must check the entry it rewrites")
	require.Equal(t, victim.ID, corrupt.ID)
	require.ErrorContains(t, err, "disagrees")
	got, err := s.Get(ctx, victim.ID)
	require.NoError(t, err)
	storetest.RequireRecordEqual(t, victim, got) // the failed Update changed nothing
	dup, err := s.Insert(ctx, storetest.NewRecord("victim"))
	require.NoError(t, err)
	require.Equal(t, victim.ID, dup.ID, "the key is still known")
}

func TestInvalidRecordsFailAlone(t *testing.T) {
	ctx := t.Context()
	s := openT(t, tempPath(t), fast)

	noState := storetest.NewRecord("no state")
	noState.State = 0
	_, err := s.Insert(ctx, noState)
	require.ErrorContains(t, err, "invalid state", "a record the store could not read back must be refused")
	_, err = s.Get(ctx, noState.ID)
	require.ErrorIs(t, err, paas.ErrTaskNotFound)

	noKey := storetest.NewRecord("no key")
	noKey.Key = ""
	farFuture := storetest.NewRecord("far future")
	farFuture.CreatedAt = time.Date(12000, time.January, 1, 0, 0, 0, 0, time.UTC)
	good := storetest.NewRecord("good")
	results := s.WriteBatch(ctx, []paas.Write{
		{Insert: true, Record: noKey},
		{Insert: true, Record: farFuture},
		{Insert: true, Record: good},
	})
	require.Len(t, results, 3)
	require.ErrorContains(t, results[0].Err, "empty task key")
	require.ErrorContains(t, results[1].Err, "outside years")
	require.NoError(t, results[2].Err)
	unfinished, err := s.Unfinished(ctx)
	require.NoError(t, err)
	require.Equal(t, []paas.TaskID{good.ID}, ids(unfinished))

	stored := results[2].Record
	stored.State = paas.TaskState(42)
	require.ErrorContains(t, s.Update(ctx, stored), "invalid state")
	got, err := s.Get(ctx, good.ID)
	require.NoError(t, err)
	require.Equal(t, paas.Pending, got.State, "a refused Update must change nothing")
}

func TestOpenLocked(t *testing.T) {
	path := tempPath(t)
	first := openT(t, path, fast)

	for name, opts := range map[string]*bolt.Options{
		"default": nil,
		"short":   {LockTimeout: 50 * time.Millisecond},
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			s, err := bolt.Open(path, opts)
			elapsed := time.Since(start)
			if err == nil {
				_ = s.Close()
			}
			require.ErrorIs(t, err, bolt.ErrLocked)
			require.ErrorContains(t, err, "in use by another process")
			require.ErrorContains(t, err, path)
			require.Less(t, elapsed, 5*time.Second, "a locked file must fail fast, not hang")
		})
	}

	// The first store is unharmed, and its Close releases the lock.
	_, err := first.Insert(t.Context(), storetest.NewRecord("still works"))
	require.NoError(t, err)
	require.NoError(t, first.Close())
	openT(t, path, &bolt.Options{LockTimeout: 50 * time.Millisecond, NoSync: true})
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
	require.ErrorIs(t, s.StoreProof(ctx, rec.ID, handler.Proof{}), paas.ErrStoreClosed, "StoreProof")
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
					rec, err = r.Record, r.Err
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

func TestOpenBadPaths(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "not-a-db")
	require.NoError(t, os.WriteFile(notDB, []byte("this is not a bbolt file, but it is long enough to be read as one?"), 0o600))

	for name, path := range map[string]string{
		"MissingParent": filepath.Join(dir, "no", "such", "dir", "tasks.db"),
		"Directory":     dir,
		"NotABoltFile":  notDB,
	} {
		t.Run(name, func(t *testing.T) {
			s, err := bolt.Open(path, &bolt.Options{LockTimeout: 50 * time.Millisecond})
			if err == nil {
				_ = s.Close()
			}
			require.Error(t, err)
			require.ErrorContains(t, err, path, "the error must name the path")
			require.NotErrorIs(t, err, bolt.ErrLocked)
			t.Log(err)
		})
	}
	_, err := os.Stat(filepath.Join(dir, "no"))
	require.ErrorIs(t, err, fs.ErrNotExist, "Open must not create directories")
}

func TestMissingParentError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "tasks.db")
	_, err := bolt.Open(path, nil)
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.ErrorContains(t, err, "directory does not exist")
}

func TestCorruptRecordErrorMessage(t *testing.T) {
	id := paas.NewTaskID()
	cause := errors.New("checksum mismatch")
	err := error(&bolt.CorruptRecordError{ID: id, Err: cause})
	require.Equal(t, "bolt: corrupt record of task "+id.String()+": checksum mismatch", err.Error())
	require.ErrorIs(t, err, cause)
	require.Equal(t, "bolt: corrupt record: checksum mismatch", (&bolt.CorruptRecordError{Err: cause}).Error())
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

// The keys in the index are what keep a program from becoming two tasks across restarts; Open
// refuses a file whose index is damaged, or has lost an entry, rather than forget a key.
func TestCorruptIndexFailsOpen(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		// damage damages the index, which holds the entries of first, rec and last, in this
		// order. It returns whether the error can name rec, and a part of its message.
		damage func(t *testing.T, b *bbolt.Bucket, rec paas.TaskRecord) (named bool, msg string)
	}{
		{"NoKey", func(t *testing.T, b *bbolt.Bucket, rec paas.TaskRecord) (bool, string) {
			require.NoError(t, b.Put(seqKey(rec.Seq), bolt.EncodeIndexEntry(false, rec.ID, "")))
			return true, "no key"
		}},
		{"Garbage", func(t *testing.T, b *bbolt.Bucket, rec paas.TaskRecord) (bool, string) {
			require.NoError(t, b.Put(seqKey(rec.Seq), []byte("short")))
			return false, "unknown format version"
		}},
		{"IDOnly", func(t *testing.T, b *bbolt.Bucket, rec paas.TaskRecord) (bool, string) {
			require.NoError(t, b.Put(seqKey(rec.Seq), rec.ID[:])) // an id alone: no header, key or checksum
			return false, fmt.Sprintf("index entry at seq %d", rec.Seq)
		}},
		{"FlippedBit", func(t *testing.T, b *bbolt.Bucket, rec paas.TaskRecord) (bool, string) {
			v := slices.Clone(b.Get(seqKey(rec.Seq)))
			v[len(v)-10] ^= 0x04 // in the key
			require.NoError(t, b.Put(seqKey(rec.Seq), v))
			return false, "checksum mismatch"
		}},
		{"UnknownFlags", func(t *testing.T, b *bbolt.Bucket, rec paas.TaskRecord) (bool, string) {
			v := bolt.EncodeIndexEntry(false, rec.ID, rec.Key)
			v = v[:len(v)-4]
			v[1] = 0x80
			require.NoError(t, b.Put(seqKey(rec.Seq), binary.BigEndian.AppendUint32(v, crc32.Checksum(v, crc32.MakeTable(crc32.Castagnoli)))))
			return true, "unknown flags"
		}},
		{"Missing", func(t *testing.T, b *bbolt.Bucket, rec paas.TaskRecord) (bool, string) {
			require.NoError(t, b.Delete(seqKey(rec.Seq)))
			return false, fmt.Sprintf("no index entry at seq %d", rec.Seq)
		}},
		{"MissingLast", func(t *testing.T, b *bbolt.Bucket, rec paas.TaskRecord) (bool, string) {
			require.NoError(t, b.Delete(seqKey(rec.Seq+1)))
			return false, fmt.Sprintf("no index entry at seq %d", rec.Seq+1)
		}},
		{"Moved", func(t *testing.T, b *bbolt.Bucket, rec paas.TaskRecord) (bool, string) {
			v := slices.Clone(b.Get(seqKey(rec.Seq)))
			require.NoError(t, b.Delete(seqKey(rec.Seq)))
			require.NoError(t, b.Put(seqKey(rec.Seq+100), v))
			return false, fmt.Sprintf("no index entry at seq %d", rec.Seq)
		}},
		{"BeyondLastSeq", func(t *testing.T, b *bbolt.Bucket, rec paas.TaskRecord) (bool, string) {
			require.NoError(t, b.Put(seqKey(rec.Seq+100), bolt.EncodeIndexEntry(false, rec.ID, rec.Key)))
			return true, "beyond the last seq given"
		}},
		{"SeqZero", func(t *testing.T, b *bbolt.Bucket, rec paas.TaskRecord) (bool, string) {
			require.NoError(t, b.Put(seqKey(0), bolt.EncodeIndexEntry(false, rec.ID, rec.Key)))
			return true, "never given"
		}},
		{"ShortKey", func(t *testing.T, b *bbolt.Bucket, rec paas.TaskRecord) (bool, string) {
			require.NoError(t, b.Put([]byte{1}, bolt.EncodeIndexEntry(false, rec.ID, rec.Key)))
			return false, "not a seq"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tempPath(t)
			s, err := bolt.Open(path, fast)
			require.NoError(t, err)
			_, err = s.Insert(ctx, storetest.NewRecord("first"))
			require.NoError(t, err)
			rec, err := s.Insert(ctx, storetest.NewRecord("logged"))
			require.NoError(t, err)
			_, err = s.Insert(ctx, storetest.NewRecord("last"))
			require.NoError(t, err)
			require.NoError(t, s.Close())

			var (
				named bool
				msg   string
			)
			withRawDB(t, path, func(tx *bbolt.Tx) error {
				named, msg = tc.damage(t, tx.Bucket(bolt.BucketIndex), rec)
				return nil
			})
			s, err = bolt.Open(path, fast)
			if err == nil {
				_ = s.Close()
			}
			var corrupt *bolt.CorruptRecordError
			require.ErrorAs(t, err, &corrupt)
			if named {
				assert.Equal(t, rec.ID, corrupt.ID)
			}
			assert.ErrorContains(t, err, msg)
			assert.ErrorContains(t, err, path)
			t.Log(err)
		})
	}
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }
