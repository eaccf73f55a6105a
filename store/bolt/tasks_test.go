package bolt_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/store/bolt"
	"github.com/zkpaas/paas/store/storetest"
)

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

	stored, err := s.Get(ctx, results[2].ID)
	require.NoError(t, err)
	stored.State = paas.TaskState(42)
	require.ErrorContains(t, s.Update(ctx, stored), "invalid state")
	got, err := s.Get(ctx, good.ID)
	require.NoError(t, err)
	require.Equal(t, paas.Pending, got.State, "a refused Update must change nothing")
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

func TestCorruptRecordErrorMessage(t *testing.T) {
	id := paas.NewTaskID()
	cause := errors.New("checksum mismatch")
	err := error(&bolt.CorruptRecordError{ID: id, Err: cause})
	require.Equal(t, "bolt: corrupt record of task "+id.String()+": checksum mismatch", err.Error())
	require.ErrorIs(t, err, cause)
	require.Equal(t, "bolt: corrupt record: checksum mismatch", (&bolt.CorruptRecordError{Err: cause}).Error())
}
