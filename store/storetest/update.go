package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
)

func testUpdate(t *testing.T, s paas.TaskStore) {
	ctx := t.Context()
	rec := mustInsert(t, s, NewRecord("update"))

	// Walk the task through a lifecycle; each Update must replace what the previous one wrote.
	steps := []func(r *paas.TaskRecord){
		func(r *paas.TaskRecord) {
			r.State = paas.InProgress
			r.Attempts = 1
		},
		func(r *paas.TaskRecord) {
			r.State = paas.Retrying
			r.LastError = "transient: backend busy"
			r.NextAttemptAt = r.UpdatedAt.Add(30 * time.Second)
		},
		func(r *paas.TaskRecord) {
			r.State = paas.Pending
			r.NextAttemptAt = time.Time{}
		},
		func(r *paas.TaskRecord) {
			r.State = paas.InProgress
			r.Attempts = 2
		},
		func(r *paas.TaskRecord) {
			r.State = paas.Failed
			r.LastError = "permanent: bad program"
		},
	}
	for i, step := range steps {
		step(&rec)
		rec.UpdatedAt = rec.UpdatedAt.Add(time.Duration(i+1) * 1500 * time.Microsecond)
		require.NoError(t, s.Update(ctx, rec), "step %d", i)

		got, err := s.Get(ctx, rec.ID)
		require.NoError(t, err, "step %d", i)
		RequireRecordEqual(t, rec, got, "Get after Update step %d (%s)", i, rec.State)
	}
}

func testUpdateClearsFields(t *testing.T, s paas.TaskStore) {
	ctx := t.Context()
	rec := mustInsert(t, s, withAllFields(NewRecord("clear"), 1))
	rec.State = paas.Retrying
	rec.Attempts = 1
	rec.LastError = "boom"
	rec.NextAttemptAt = rec.CreatedAt.Add(time.Minute)
	require.NoError(t, s.Update(ctx, rec))

	// Zero values are values too: a store must not keep the old ones when given zeros.
	rec.State = paas.Pending
	rec.LastError = ""
	rec.NextAttemptAt = time.Time{}
	rec.Priority, rec.DependsOn, rec.Timeout, rec.Restarts = 0, nil, 0, 0
	rec.Checkpoint, rec.FailedDependency, rec.WaitingSince = nil, paas.TaskID{}, time.Time{}
	require.NoError(t, s.Update(ctx, rec))

	got, err := s.Get(ctx, rec.ID)
	require.NoError(t, err)
	assert.Empty(t, got.LastError, "Update must clear LastError")
	assert.True(t, got.NextAttemptAt.IsZero(), "Update must clear NextAttemptAt, got %v", got.NextAttemptAt)
	assert.Empty(t, got.DependsOn, "Update must clear DependsOn")
	assert.Empty(t, got.Checkpoint, "Update must clear Checkpoint")
	assert.True(t, got.FailedDependency.IsZero(), "Update must clear FailedDependency")
	assert.True(t, got.WaitingSince.IsZero(), "Update must clear WaitingSince, got %v", got.WaitingSince)
	RequireRecordEqual(t, rec, got)
}

func testUpdateKeepsIdentity(t *testing.T, s paas.TaskStore) {
	ctx := t.Context()
	orig := mustInsert(t, s, NewRecord("identity"))
	other := mustInsert(t, s, NewRecord("other"))

	changed := orig
	changed.Seq = other.Seq + 100
	changed.Key = NewRecord("a different program").Key
	changed.CreatedAt = orig.CreatedAt.Add(time.Hour)
	changed.State = paas.InProgress
	changed.Attempts = 1
	changed.UpdatedAt = orig.UpdatedAt.Add(time.Second)
	require.NoError(t, s.Update(ctx, changed))

	got, err := s.Get(ctx, orig.ID)
	require.NoError(t, err)
	want := changed
	want.Seq, want.Key, want.CreatedAt = orig.Seq, orig.Key, orig.CreatedAt
	RequireRecordEqual(t, want, got, "Update must keep the stored ID, Seq, Key and CreatedAt and replace the rest")

	// The key index must not have followed the Update either: the original key is still taken
	// by this task, and the key passed to Update is still free.
	dup, err := s.Insert(ctx, NewRecord("identity"))
	require.NoError(t, err)
	require.Equal(t, orig.ID, dup.ID, "the original key must still name the task after Update")
	fresh := NewRecord("a different program")
	inserted, err := s.Insert(ctx, fresh)
	require.NoError(t, err)
	require.Equal(t, fresh.ID, inserted.ID, "a key passed to Update must not be taken by it")

	unfinished := mustUnfinishedIDs(t, s)
	require.Equal(t, []paas.TaskID{orig.ID, other.ID, fresh.ID}, unfinished,
		"Update must not move a task in Seq order")
}

func testUpdateUnknownID(t *testing.T, s paas.TaskStore) {
	ctx := t.Context()
	mustInsert(t, s, NewRecord("known"))
	unknown := NewRecord("unknown")

	err := s.Update(ctx, unknown)
	require.ErrorIs(t, err, paas.ErrTaskNotFound)

	_, err = s.Get(ctx, unknown.ID)
	require.ErrorIs(t, err, paas.ErrTaskNotFound, "Update of an unknown id must store nothing")
	require.Len(t, mustUnfinishedIDs(t, s), 1, "Update of an unknown id must store nothing")
	// Nor may it take the key.
	got, err := s.Insert(ctx, unknown)
	require.NoError(t, err)
	require.Equal(t, unknown.ID, got.ID)
}
