package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
)

// testUpdateFenced checks that an update with a Version applies only on top of the version
// before it, and that a stale one changes nothing.
func testUpdateFenced(t *testing.T, s paas.TaskStore) {
	ctx := t.Context()
	rec := NewRecord("fenced")
	rec.Version = 1
	rec = mustInsert(t, s, rec)
	require.Equal(t, uint64(1), rec.Version, "Insert must keep the Version it is given")

	// Two writers decide on version 1; the first one's write lands.
	first, second := rec, rec
	first.State, first.Version = paas.InProgress, 2
	require.NoError(t, s.Update(ctx, first))
	second.State, second.Version = paas.Cancelled, 2
	err := s.Update(ctx, second)
	require.ErrorIs(t, err, paas.ErrConflict, "an update decided on a version that has changed must fail")
	got, err := s.Get(ctx, rec.ID)
	require.NoError(t, err)
	RequireRecordEqual(t, first, got, "a fenced update that conflicts must change nothing")

	// A version from the future conflicts too: it skips a write.
	ahead := first
	ahead.State, ahead.Version = paas.Completed, 4
	require.ErrorIs(t, s.Update(ctx, ahead), paas.ErrConflict)

	next := first
	next.State, next.Version = paas.Completed, 3
	next.UpdatedAt = next.UpdatedAt.Add(time.Millisecond)
	require.NoError(t, s.Update(ctx, next))
	got, err = s.Get(ctx, rec.ID)
	require.NoError(t, err)
	RequireRecordEqual(t, next, got, "Get must return the fenced update and its Version")

	// Version zero is an unfenced write, whatever is stored.
	unfenced := next
	unfenced.Version, unfenced.LastError = 0, "unfenced"
	require.NoError(t, s.Update(ctx, unfenced))
	got, err = s.Get(ctx, rec.ID)
	require.NoError(t, err)
	RequireRecordEqual(t, unfenced, got)
}

// testWriteBatchFenced checks that a conflicting update of a batch fails alone.
func testWriteBatchFenced(t *testing.T, s paas.BatchStore) {
	ctx := t.Context()
	a, b := NewRecord("fenced a"), NewRecord("fenced b")
	a.Version, b.Version = 1, 1
	a, b = mustInsert(t, s, a), mustInsert(t, s, b)
	staleA, nextB := a, b
	staleA.State, staleA.Version = paas.InProgress, 1 // the version it was read at: stale
	nextB.State, nextB.Version = paas.InProgress, 2
	res := s.WriteBatch(ctx, []paas.Write{{Record: staleA}, {Record: nextB}})
	require.Len(t, res, 2)
	require.ErrorIs(t, res[0].Err, paas.ErrConflict, "a stale update in a batch must fail")
	require.NoError(t, res[1].Err, "a conflict must fail its own write only")
	got, err := s.Get(ctx, a.ID)
	require.NoError(t, err)
	RequireRecordEqual(t, a, got, "a conflicting write of a batch must change nothing")
	got, err = s.Get(ctx, b.ID)
	require.NoError(t, err)
	RequireRecordEqual(t, nextB, got)
}
