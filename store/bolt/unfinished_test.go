package bolt_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/store/storetest"
)

// Unfinished copies the fields of many records into shared blocks of memory: a caller that
// writes to or appends to the fields of one record must not change another.
func TestUnfinishedRecordsShareNoWritableMemory(t *testing.T) {
	ctx := t.Context()
	s := openT(t, tempPath(t), fast)
	var want []paas.TaskRecord
	for i := range 3 {
		rec := storetest.NewRecord(fmt.Sprintf("program %d", i))
		rec.DependsOn = []paas.TaskID{paas.NewTaskID(), paas.NewTaskID()}
		rec.Checkpoint = []byte(fmt.Sprintf("checkpoint %d", i))
		rec.LastError = fmt.Sprintf("error %d", i)
		got, err := s.Insert(ctx, rec)
		require.NoError(t, err)
		want = append(want, got)
	}

	recs, err := s.Unfinished(ctx)
	require.NoError(t, err)
	require.Equal(t, want, recs)
	for i := range recs[:2] {
		r := &recs[i]
		r.Program[0] = 'X'
		r.Checkpoint[0] = 'X'
		r.DependsOn[0] = paas.TaskID{}
		r.Program = append(r.Program, "overwrites the next program?"...)
		r.Checkpoint = append(r.Checkpoint, "overwrites the next checkpoint?"...)
		r.DependsOn = append(r.DependsOn, paas.NewTaskID(), paas.NewTaskID())
	}
	require.Equal(t, want[2], recs[2], "the last record, after changes to the others")
	require.True(t, bytes.HasPrefix(recs[1].Program, []byte("X")), "the change to the record before must not undo this one's")
	require.Equal(t, paas.TaskID{}, recs[1].DependsOn[0])

	again, err := s.Unfinished(ctx)
	require.NoError(t, err)
	require.Equal(t, want, again, "the changes must not reach the store")
}

// Unfinished returns the records in Seq order whatever the order of their ids, the keys of
// the tasks bucket: ids given by the caller need not grow, as paas.NewTaskID's do.
func TestUnfinishedInSeqOrderWhateverTheIDs(t *testing.T) {
	ctx := t.Context()
	s := openT(t, tempPath(t), fast)
	order := []byte{7, 3, 9, 1, 8, 2, 6, 4, 5}
	var want []paas.TaskRecord
	for i, n := range order {
		rec := storetest.NewRecord(fmt.Sprint(n))
		rec.ID = paas.TaskID{0: 1, 15: n}
		got, err := s.Insert(ctx, rec)
		require.NoError(t, err)
		if i%3 == 1 {
			got.State = paas.Completed
			require.NoError(t, s.Update(ctx, got))
			continue
		}
		want = append(want, got)
	}

	recs, err := s.Unfinished(ctx)
	require.NoError(t, err)
	require.Equal(t, want, recs)
	require.True(t, slices.IsSortedFunc(recs, func(a, b paas.TaskRecord) int { return int(a.Seq) - int(b.Seq) }))
}
