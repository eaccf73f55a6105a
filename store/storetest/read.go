package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
)

func testGetUnknownID(t *testing.T, s paas.TaskStore) {
	ctx := t.Context()
	_, err := s.Get(ctx, paas.NewTaskID())
	require.ErrorIs(t, err, paas.ErrTaskNotFound, "Get on an empty store")

	mustInsert(t, s, NewRecord("known"))
	_, err = s.Get(ctx, paas.NewTaskID())
	require.ErrorIs(t, err, paas.ErrTaskNotFound, "Get on a non-empty store")
}

func testUnfinished(t *testing.T, s paas.TaskStore) {
	ctx := t.Context()

	// Two tasks per state, inserted round-robin so that the unfinished ones are interleaved
	// with final ones in Seq order.
	byState := make(map[paas.TaskState][]paas.TaskRecord)
	var all []paas.TaskRecord
	for round := range 2 {
		for _, state := range paas.States {
			rec := mustInsert(t, s, NewRecord(fmt.Sprintf("%s-%d", state, round)))
			rec.State = state
			all = append(all, rec)
			byState[state] = append(byState[state], rec)
		}
	}
	// Update in reverse, so that an order by update time or by id would show.
	for i := len(all) - 1; i >= 0; i-- {
		rec := &all[i]
		if rec.State == paas.Pending {
			continue
		}
		rec.Attempts = 1
		rec.UpdatedAt = rec.UpdatedAt.Add(time.Duration(len(all)-i) * time.Millisecond)
		if rec.State == paas.Retrying {
			rec.NextAttemptAt = rec.UpdatedAt.Add(time.Minute)
		}
		require.NoError(t, s.Update(ctx, *rec))
	}

	var want []paas.TaskRecord
	for _, rec := range all {
		if !rec.State.Final() {
			want = append(want, rec)
		}
	}

	got, err := s.Unfinished(ctx)
	require.NoError(t, err)
	requireSeqOrder(t, got)
	require.Equal(t, recordIDs(want), recordIDs(got),
		"Unfinished must return exactly the Blocked, Pending, InProgress and Retrying tasks, in Seq order")
	for i := range want {
		RequireRecordEqual(t, want[i], got[i], "Unfinished record %d", i)
	}

	// A task that reaches a final state leaves Unfinished.
	done := byState[paas.InProgress][0]
	done.State = paas.Completed
	require.NoError(t, s.Update(ctx, done))
	got, err = s.Unfinished(ctx)
	require.NoError(t, err)
	require.NotContains(t, recordIDs(got), done.ID, "a Completed task must leave Unfinished")
	require.Len(t, got, len(want)-1)
}

func testUnfinishedEmpty(t *testing.T, s paas.TaskStore) {
	got, err := s.Unfinished(t.Context())
	require.NoError(t, err)
	require.Empty(t, got)

	rec := mustInsert(t, s, NewRecord("cancelled"))
	rec.State = paas.Cancelled
	require.NoError(t, s.Update(t.Context(), rec))
	got, err = s.Unfinished(t.Context())
	require.NoError(t, err)
	require.Empty(t, got, "a store holding only final tasks has none unfinished")
}

// testGetByKey checks that a task is found by its key in every state, until it is pruned.
func testGetByKey(t *testing.T, s paas.TaskStore) {
	ctx := t.Context()
	rec := mustInsert(t, s, withAllFields(NewRecord("by key"), 1))
	other := mustInsert(t, s, NewRecord("by key, other"))
	got, err := s.GetByKey(ctx, rec.Key)
	require.NoError(t, err)
	RequireRecordEqual(t, rec, got, "GetByKey must return the task of the key")
	got, err = s.GetByKey(ctx, other.Key)
	require.NoError(t, err)
	require.Equal(t, other.ID, got.ID)

	rec.State = paas.Completed
	require.NoError(t, s.Update(ctx, rec))
	got, err = s.GetByKey(ctx, rec.Key)
	require.NoError(t, err)
	RequireRecordEqual(t, rec, got, "GetByKey must find a finished task")

	_, err = s.GetByKey(ctx, NewRecord("never stored").Key)
	require.ErrorIs(t, err, paas.ErrTaskNotFound)

	_, err = s.Prune(ctx, rec.UpdatedAt.Add(time.Second))
	require.NoError(t, err)
	_, err = s.GetByKey(ctx, rec.Key)
	require.ErrorIs(t, err, paas.ErrTaskNotFound, "a pruned task's key names no task")
}
