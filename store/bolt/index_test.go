package bolt_test

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/store/bolt"
	"github.com/zkpaas/paas/store/storetest"
)

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
// finished (the bucket comment in buckets.go says why), and leaves the task out. The entry is
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
