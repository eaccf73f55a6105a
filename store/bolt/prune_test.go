package bolt_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/store/bolt"
	"github.com/zkpaas/paas/store/storetest"
)

// pruneFixture is a store file holding a task of every state last updated long ago, and one
// of every state last updated recently, interleaved in Seq order.
type pruneFixture struct {
	path   string
	cutoff time.Time
	all    []paas.TaskRecord
	pruned map[paas.TaskID]bool // the old final tasks, which a Prune at cutoff deletes
}

func newPruneFixture(t *testing.T, s *bolt.Store, path string) pruneFixture {
	t.Helper()
	ctx := t.Context()
	f := pruneFixture{path: path, cutoff: time.Now().UTC().Add(-time.Hour), pruned: make(map[paas.TaskID]bool)}
	for i, state := range slices.Concat(paas.States, paas.States) {
		rec, err := s.Insert(ctx, storetest.NewRecord(fmt.Sprintf("task %d", i)))
		require.NoError(t, err)
		rec.State = state
		rec.Priority, rec.Restarts, rec.Checkpoint = i, 1, []byte("checkpoint")
		rec.DependsOn = []paas.TaskID{paas.NewTaskID()}
		if i%2 == 0 {
			rec.UpdatedAt = f.cutoff.Add(-time.Duration(i+1) * time.Minute)
			if state.Final() {
				f.pruned[rec.ID] = true
			}
		}
		require.NoError(t, s.Update(ctx, rec))
		f.all = append(f.all, rec)
	}
	require.NotEmpty(t, f.pruned)
	return f
}

// check checks that the store holds exactly the tasks of f not pruned, as they were, and its
// index exactly their entries, with the pruned ones counted.
func (f pruneFixture) check(t *testing.T, s *bolt.Store) {
	t.Helper()
	ctx := t.Context()
	var unfinished []paas.TaskID
	for _, rec := range f.all {
		got, err := s.Get(ctx, rec.ID)
		if f.pruned[rec.ID] {
			require.ErrorIs(t, err, paas.ErrTaskNotFound, "pruned %s task, seq %d", rec.State, rec.Seq)
			continue
		}
		require.NoError(t, err)
		storetest.RequireRecordEqual(t, rec, got)
		if !rec.State.Final() {
			unfinished = append(unfinished, rec.ID)
		}
	}
	got, err := s.Unfinished(ctx)
	require.NoError(t, err)
	require.Equal(t, unfinished, ids(got))
}

func (f pruneFixture) checkFile(t *testing.T) {
	t.Helper()
	var entries []bolt.IndexEntry
	var pruned uint64
	withRawDB(t, f.path, func(tx *bbolt.Tx) error {
		index := tx.Bucket(bolt.BucketIndex)
		pruned = index.Sequence()
		return index.ForEach(func(k, v []byte) error {
			e, err := bolt.DecodeIndexEntry(k, v)
			require.NoError(t, err)
			entries = append(entries, e)
			return nil
		})
	})
	var want []bolt.IndexEntry
	for _, rec := range f.all {
		if !f.pruned[rec.ID] {
			want = append(want, bolt.IndexEntry{Seq: rec.Seq, Finished: rec.State.Final(), ID: rec.ID, Key: rec.Key})
		}
	}
	require.Equal(t, want, entries, "the index must hold the entries of the tasks kept, and no others")
	require.Equal(t, uint64(len(f.pruned)), pruned, "the sequence of the index bucket must count the entries pruned")
}

func TestPruneReopen(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	s, err := bolt.Open(path, nil) // syncing: this is a durability test
	require.NoError(t, err)
	f := newPruneFixture(t, s, path)
	var victim paas.TaskRecord // a pruned task, with a proof
	for _, rec := range f.all {
		if f.pruned[rec.ID] {
			victim = rec
			break
		}
	}
	proof := paas.Proof{Backend: paas.BackendSP1, Receipt: []byte("receipt")}
	require.NoError(t, s.StoreProof(ctx, victim.ID, proof))

	n, err := s.Prune(ctx, f.cutoff)
	require.NoError(t, err)
	require.Equal(t, len(f.pruned), n)
	f.check(t, s)
	require.NoError(t, s.Close())

	f.checkFile(t)
	s = openT(t, path, nil)
	f.check(t, s)

	// The key map, rebuilt at Open from the index, has forgotten the pruned keys only.
	last := f.all[len(f.all)-1]
	for _, rec := range f.all {
		again := storetest.NewRecord(string(rec.Program))
		got, err := s.Insert(ctx, again)
		require.NoError(t, err)
		if f.pruned[rec.ID] {
			require.Equal(t, again.ID, got.ID, "the key of a pruned task must make a new task")
			require.Greater(t, got.Seq, last.Seq)
			last = got
		} else {
			require.Equal(t, rec.ID, got.ID, "the key of a task kept must still name it after a reopen")
		}
	}

	// Proofs are the product: Prune leaves them, for the caller to delete if it wants.
	got, err := s.Proof(ctx, victim.ID)
	require.NoError(t, err, "Prune must not delete proofs")
	require.Equal(t, proof, got)
	require.NoError(t, s.DeleteProof(ctx, victim.ID))
	_, err = s.Proof(ctx, victim.ID)
	require.ErrorIs(t, err, paas.ErrProofNotFound)
	require.NoError(t, s.DeleteProof(ctx, victim.ID), "deleting a proof that is not there succeeds")
}

// A prune larger than a transaction's share takes several, with the same result as one, and
// the index stays sound across the gaps they leave.
func TestPruneInBatches(t *testing.T) {
	for _, batch := range []int{1, 2, 3, 1000} {
		t.Run(fmt.Sprint(batch), func(t *testing.T) {
			ctx := t.Context()
			path := tempPath(t)
			s, err := bolt.Open(path, fast)
			require.NoError(t, err)
			bolt.SetPruneBatch(s, batch)
			f := newPruneFixture(t, s, path)
			n, err := s.Prune(ctx, f.cutoff)
			require.NoError(t, err)
			require.Equal(t, len(f.pruned), n)
			f.check(t, s)
			require.NoError(t, s.Close())
			f.checkFile(t)
			f.check(t, openT(t, path, fast))
		})
	}
}

// errAfter is a context whose Err reports context.Canceled from its n+1st call on. Prune asks
// once at the start and once between two transactions.
type errAfter struct {
	context.Context
	mu sync.Mutex
	n  int
}

func (c *errAfter) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n > 0 {
		c.n--
		return nil
	}
	return context.Canceled
}

// A context that ends between two transactions stops Prune there: what the committed ones
// deleted stays deleted and is counted, and the next Prune finishes the work.
func TestPruneStoppedBetweenBatches(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	s := openT(t, path, fast)
	bolt.SetPruneBatch(s, 1)
	f := newPruneFixture(t, s, path)
	n, err := s.Prune(&errAfter{Context: ctx, n: 3}, time.Now().Add(time.Hour)) // three passes
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorContains(t, err, "after deleting")
	require.Positive(t, n)
	final := 0
	for _, rec := range f.all {
		if rec.State.Final() {
			final++
		}
	}
	require.Less(t, n, final)
	rest, err := s.Prune(ctx, time.Now().Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, final, n+rest)
}

// Prune skips the entries flagged unfinished without reading their records: a damaged one does
// not stop it (Unfinished reports it, as it must).
func TestPruneDoesNotReadUnfinishedRecords(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	s, err := bolt.Open(path, fast)
	require.NoError(t, err)
	f := newPruneFixture(t, s, path)
	require.NoError(t, s.Close())
	var damaged paas.TaskRecord
	for _, rec := range f.all {
		if !rec.State.Final() {
			damaged = rec
		}
	}
	withRawDB(t, path, func(tx *bbolt.Tx) error {
		return tx.Bucket(bolt.BucketTasks).Put(damaged.ID[:], []byte("not a record"))
	})

	s = openT(t, path, fast)
	n, err := s.Prune(ctx, f.cutoff)
	require.NoError(t, err)
	require.Equal(t, len(f.pruned), n)
	_, err = s.Unfinished(ctx)
	var corrupt *bolt.CorruptRecordError
	require.ErrorAs(t, err, &corrupt)
	require.Equal(t, damaged.ID, corrupt.ID)
}

// Prune deletes what it cannot take back, so it deletes a task only once its record, read and
// checked against its entry, says it is final and old. Anything else is damage, which it
// reports, naming the task, and keeps the task.
func TestPruneCorrupt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		msg    string
		damage func(t *testing.T, tx *bbolt.Tx, victim paas.TaskRecord)
	}{
		{"DamagedFinishedRecord", "checksum mismatch", func(t *testing.T, tx *bbolt.Tx, victim paas.TaskRecord) {
			tasks := tx.Bucket(bolt.BucketTasks)
			v := slices.Clone(tasks.Get(victim.ID[:]))
			v[len(v)/2] ^= 0x08
			require.NoError(t, tasks.Put(victim.ID[:], v))
		}},
		{"MissingFinishedRecord", "not stored", func(t *testing.T, tx *bbolt.Tx, victim paas.TaskRecord) {
			require.NoError(t, tx.Bucket(bolt.BucketTasks).Delete(victim.ID[:]))
		}},
		{"FlaggedFinishedRecordUnfinished", "disagrees", func(t *testing.T, tx *bbolt.Tx, victim paas.TaskRecord) {
			// The record of an old, unfinished task under an entry flagged finished: only the
			// record tells that the task must not be deleted.
			victim.State = paas.Retrying
			b, err := bolt.EncodeRecord(victim)
			require.NoError(t, err)
			require.NoError(t, tx.Bucket(bolt.BucketTasks).Put(victim.ID[:], b))
		}},
		{"EntryOfAnotherKey", "disagrees", func(t *testing.T, tx *bbolt.Tx, victim paas.TaskRecord) {
			require.NoError(t, tx.Bucket(bolt.BucketIndex).Put(seqKey(victim.Seq), bolt.EncodeIndexEntry(true, victim.ID, "another key")))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			path := tempPath(t)
			s, err := bolt.Open(path, fast)
			require.NoError(t, err)
			old := time.Now().Add(-time.Hour)
			victim, err := s.Insert(ctx, storetest.NewRecord("victim"))
			require.NoError(t, err)
			victim.State, victim.UpdatedAt = paas.Completed, old
			require.NoError(t, s.Update(ctx, victim))
			require.NoError(t, s.Close())
			withRawDB(t, path, func(tx *bbolt.Tx) error { tc.damage(t, tx, victim); return nil })

			s = openT(t, path, fast)
			n, err := s.Prune(ctx, time.Now())
			var corrupt *bolt.CorruptRecordError
			require.ErrorAs(t, err, &corrupt)
			require.Equal(t, victim.ID, corrupt.ID)
			require.ErrorContains(t, err, tc.msg)
			require.Zero(t, n)
			require.NoError(t, s.Close())
			withRawDB(t, path, func(tx *bbolt.Tx) error {
				require.NotNil(t, tx.Bucket(bolt.BucketIndex).Get(seqKey(victim.Seq)), "the task's entry must be kept")
				require.Zero(t, tx.Bucket(bolt.BucketIndex).Sequence(), "nothing may be counted pruned")
				return nil
			})
		})
	}
}

// With gaps left by Prune, Open still notices a lost index entry, and a pruned count that
// disagrees with the entries.
func TestCorruptIndexWithGapsFailsOpen(t *testing.T) {
	for _, tc := range []struct {
		name   string
		msg    string
		damage func(t *testing.T, index *bbolt.Bucket, kept []paas.TaskRecord)
	}{
		{"Healthy", "", func(*testing.T, *bbolt.Bucket, []paas.TaskRecord) {}},
		{"LostEntry", "index entries lost", func(t *testing.T, index *bbolt.Bucket, kept []paas.TaskRecord) {
			require.NoError(t, index.Delete(seqKey(kept[1].Seq)))
		}},
		{"LostLastEntry", "index entries lost", func(t *testing.T, index *bbolt.Bucket, kept []paas.TaskRecord) {
			require.NoError(t, index.Delete(seqKey(kept[len(kept)-1].Seq)))
		}},
		{"LostEntryCounted", "", func(t *testing.T, index *bbolt.Bucket, kept []paas.TaskRecord) {
			// What Prune does to a task, so not damage to the index: the task's record is
			// left over, unreachable, but harmless (TestPruneCorrupt covers the converse).
			require.NoError(t, index.Delete(seqKey(kept[1].Seq)))
			require.NoError(t, index.SetSequence(index.Sequence()+1))
		}},
		{"CountTooHigh", "but only", func(t *testing.T, index *bbolt.Bucket, _ []paas.TaskRecord) {
			require.NoError(t, index.SetSequence(index.Sequence()+1))
		}},
		{"CountTooLow", "index entries lost", func(t *testing.T, index *bbolt.Bucket, _ []paas.TaskRecord) {
			require.NoError(t, index.SetSequence(index.Sequence()-1))
		}},
		{"CountZero", "no index entry at seq", func(t *testing.T, index *bbolt.Bucket, _ []paas.TaskRecord) {
			require.NoError(t, index.SetSequence(0))
		}},
		{"CountBeyondSeqs", "more than the", func(t *testing.T, index *bbolt.Bucket, _ []paas.TaskRecord) {
			require.NoError(t, index.SetSequence(1<<40))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			path := tempPath(t)
			s, err := bolt.Open(path, fast)
			require.NoError(t, err)
			f := newPruneFixture(t, s, path)
			_, err = s.Prune(ctx, f.cutoff)
			require.NoError(t, err)
			require.NoError(t, s.Close())
			var kept []paas.TaskRecord
			for _, rec := range f.all {
				if !f.pruned[rec.ID] {
					kept = append(kept, rec)
				}
			}
			withRawDB(t, path, func(tx *bbolt.Tx) error { tc.damage(t, tx.Bucket(bolt.BucketIndex), kept); return nil })

			s, err = bolt.Open(path, fast)
			if tc.msg == "" {
				require.NoError(t, err)
				require.NoError(t, s.Close())
				return
			}
			if err == nil {
				_ = s.Close()
			}
			var corrupt *bolt.CorruptRecordError
			require.ErrorAs(t, err, &corrupt)
			require.ErrorContains(t, err, tc.msg)
			t.Log(err)
		})
	}
}

// Prune and the writes of the service run at once: inserts of the pruned keys, updates of the
// tasks being pruned, batches. Nothing fails, and every write lands on a task that exists.
func TestPruneConcurrentWrites(t *testing.T) {
	const tasks = 200
	ctx := t.Context()
	s := openT(t, tempPath(t), fast)
	bolt.SetPruneBatch(s, 7)
	old := time.Now().Add(-time.Hour)
	recs := make([]paas.TaskRecord, tasks)
	for i := range recs {
		rec, err := s.Insert(ctx, storetest.NewRecord(fmt.Sprint(i)))
		require.NoError(t, err)
		rec.State, rec.UpdatedAt = paas.Completed, old
		require.NoError(t, s.Update(ctx, rec))
		recs[i] = rec
	}

	var pruned int
	var wg sync.WaitGroup
	start := make(chan struct{})
	wg.Go(func() {
		<-start
		var err error
		pruned, err = s.Prune(ctx, time.Now())
		assert.NoError(t, err)
	})
	revived := make([]bool, tasks)
	for w := range 4 {
		wg.Go(func() {
			<-start
			for i := w; i < tasks; i += 4 {
				switch i % 3 {
				case 0: // an insert of the key, as a Submit of the program
					_, err := s.Insert(ctx, storetest.NewRecord(fmt.Sprint(i)))
					assert.NoError(t, err)
				case 1: // an operator's Retry: the task is unfinished again, unless pruned first
					rec := recs[i]
					rec.State, rec.UpdatedAt = paas.Pending, time.Now()
					err := s.Update(ctx, rec)
					if err == nil {
						revived[i] = true
					} else {
						assert.ErrorIs(t, err, paas.ErrTaskNotFound)
					}
				case 2:
					r := s.WriteBatch(ctx, []paas.Write{{Insert: true, Record: storetest.NewRecord(fmt.Sprint(i))}})[0]
					assert.NoError(t, r.Err)
				}
			}
		})
	}
	close(start)
	wg.Wait()

	kept := 0
	for i, rec := range recs {
		got, err := s.Get(ctx, rec.ID)
		if revived[i] {
			require.NoError(t, err, "a task made unfinished before Prune reached it must be kept")
			require.Equal(t, paas.Pending, got.State)
			kept++
			continue
		}
		require.ErrorIs(t, err, paas.ErrTaskNotFound, "task %d", i)
	}
	require.Equal(t, tasks-kept, pruned)
	unfinished, err := s.Unfinished(ctx)
	require.NoError(t, err)
	for _, rec := range unfinished {
		dup, err := s.Insert(ctx, storetest.NewRecord(string(rec.Program)))
		require.NoError(t, err)
		require.Equal(t, rec.ID, dup.ID, "the key map must name every unfinished task")
	}
}

// A Prune that finds nothing to delete writes nothing: its transactions roll back rather than
// commit, and so cost no sync. Every Open commits one transaction, of its own.
func TestPruneNothingWritesNothing(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	s, err := bolt.Open(path, fast)
	require.NoError(t, err)
	f := newPruneFixture(t, s, path)
	require.NoError(t, s.Close())
	txid := func() (id int) {
		withRawDB(t, path, func(tx *bbolt.Tx) error { id = tx.ID(); return nil })
		return id
	}
	// withRawDB commits a transaction too; measure what an Open and a Close cost first.
	t0 := txid()
	require.NoError(t, openT(t, path, fast).Close())
	t1 := txid()

	s = openT(t, path, fast)
	bolt.SetPruneBatch(s, 2)
	n, err := s.Prune(ctx, f.cutoff.Add(-24*time.Hour))
	require.NoError(t, err)
	require.Zero(t, n)
	require.NoError(t, s.Close())
	require.Equal(t, t1-t0, txid()-t1, "a Prune that deletes nothing must commit nothing")
}
