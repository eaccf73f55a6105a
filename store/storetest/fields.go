package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
)

// withAllFields returns rec with every field that NewRecord leaves zero set, and those it sets
// changed, all to values that depend on n, so that two calls with different n give records that
// differ in every field but the identity (ID, Seq, Key, CreatedAt). DependsOn gets fresh ids.
func withAllFields(rec paas.TaskRecord, n int) paas.TaskRecord {
	d := time.Duration(n)
	rec.RoutingKey = paas.RoutingKey(fmt.Sprintf("route %d", n))
	rec.Backend = paas.Backend(fmt.Sprintf("backend %d", n))
	rec.Program = fmt.Appendf(nil, "program %d", n)
	rec.Weight = int64(10 + n)
	rec.Priority = 3*n - 7 // negative for n = 1 and 2: priorities may be
	rec.DependsOn = []paas.TaskID{paas.NewTaskID(), paas.NewTaskID()}
	rec.Timeout = d*1500*time.Millisecond + 7*time.Nanosecond
	rec.Attempts = n
	rec.Restarts = n + 1
	rec.Interruptions = n + 2
	rec.Runs = 2*n + 3
	rec.NoTimeout = n%2 == 0
	rec.Checkpoint = fmt.Appendf(nil, "checkpoint %d", n)
	rec.LastError = fmt.Sprintf("last error %d", n)
	rec.FailedDependency = rec.DependsOn[1]
	rec.FailedDependencyState = []paas.TaskState{paas.Failed, paas.Cancelled}[n%2]
	rec.NextAttemptAt = rec.CreatedAt.Add(d*time.Minute + 333*time.Microsecond)
	rec.WaitingSince = rec.CreatedAt.Add(d*time.Second + 123*time.Microsecond)
	rec.UpdatedAt = rec.CreatedAt.Add(d*time.Millisecond + 1*time.Microsecond)
	return rec
}

// scribble overwrites the memory behind every slice of rec.
func scribble(rec paas.TaskRecord) {
	for i := range rec.Program {
		rec.Program[i] = 'X'
	}
	for i := range rec.DependsOn {
		rec.DependsOn[i] = paas.TaskID{0xde, 0xad}
	}
	for i := range rec.Checkpoint {
		rec.Checkpoint[i] = 'X'
	}
}

// requireSlicesEqual fails t unless got holds the Program, DependsOn and Checkpoint of want.
func requireSlicesEqual(t *testing.T, want, got paas.TaskRecord) {
	t.Helper()
	require.Equal(t, string(want.Program), string(got.Program), "the store's copy of Program changed")
	require.Equal(t, withoutTimes(want).DependsOn, withoutTimes(got).DependsOn, "the store's copy of DependsOn changed")
	require.Equal(t, string(want.Checkpoint), string(got.Checkpoint), "the store's copy of Checkpoint changed")
}

func testAllFieldsRoundTrip(t *testing.T, s paas.TaskStore) {
	ctx := t.Context()
	rec := withAllFields(NewRecord("all fields"), 1)
	rec.State = paas.Blocked // as Submit inserts a task whose dependencies have not completed
	got := mustInsert(t, s, rec)
	RequireRecordEqual(t, withSeq(rec, got.Seq), got, "Insert must return every field it was given")
	stored, err := s.Get(ctx, rec.ID)
	require.NoError(t, err)
	RequireRecordEqual(t, got, stored, "Get must return every field Insert was given")
	dup := mustInsert(t, s, NewRecord("all fields"))
	RequireRecordEqual(t, got, dup, "Insert of a duplicate key must return every field of the existing record")

	// Every field but the identity changes.
	updated := withAllFields(got, 2)
	updated.State = paas.Retrying
	require.NoError(t, s.Update(ctx, updated))
	stored, err = s.Get(ctx, rec.ID)
	require.NoError(t, err)
	RequireRecordEqual(t, updated, stored, "Get must return every field Update was given")

	unfinished, err := s.Unfinished(ctx)
	require.NoError(t, err)
	require.Len(t, unfinished, 1)
	RequireRecordEqual(t, updated, unfinished[0], "Unfinished must return every field")

	// And back, through a final state.
	final := withAllFields(stored, 3)
	final.State = paas.Failed
	require.NoError(t, s.Update(ctx, final))
	stored, err = s.Get(ctx, rec.ID)
	require.NoError(t, err)
	RequireRecordEqual(t, final, stored, "Get must return every field of a final task")
}

func testBlockedIsUnfinished(t *testing.T, s paas.TaskStore) {
	ctx := t.Context()
	blocked := withAllFields(NewRecord("blocked"), 1)
	blocked.State = paas.Blocked
	blocked = mustInsert(t, s, blocked)
	pending := mustInsert(t, s, NewRecord("pending"))
	// As Submit inserts a task that can start at once: its first attempt begun.
	started := NewRecord("started")
	started.State, started.Attempts, started.Runs = paas.InProgress, 1, 1
	started = mustInsert(t, s, started)

	requireUnfinished := func(msg string, want ...paas.TaskRecord) {
		t.Helper()
		got, err := s.Unfinished(ctx)
		require.NoError(t, err)
		require.Equal(t, recordIDs(want), recordIDs(got), msg)
		for i := range want {
			RequireRecordEqual(t, want[i], got[i], "%s: record %d", msg, i)
		}
	}
	requireUnfinished("a task inserted Blocked or InProgress is unfinished", blocked, pending, started)

	// Blocked on its input, it waits with a time to look again.
	blocked.WaitingSince = blocked.UpdatedAt.Add(time.Second)
	blocked.NextAttemptAt = blocked.WaitingSince.Add(time.Minute)
	blocked.UpdatedAt = blocked.WaitingSince
	require.NoError(t, s.Update(ctx, blocked))
	requireUnfinished("a Blocked task stays unfinished through an update", blocked, pending, started)

	// A dependency failed: the task fails, and leaves Unfinished.
	failed := blocked
	failed.State = paas.Failed
	failed.FailedDependency = blocked.DependsOn[0]
	failed.LastError = "dependency failed"
	require.NoError(t, s.Update(ctx, failed))
	requireUnfinished("a Blocked task that fails leaves Unfinished", pending, started)

	// An operator's Retry blocks it again on its dependencies.
	retried := failed
	retried.State = paas.Blocked
	retried.FailedDependency, retried.LastError = paas.TaskID{}, ""
	require.NoError(t, s.Update(ctx, retried))
	requireUnfinished("a task made Blocked again is unfinished again", retried, pending, started)
}

func testWriteBatchAllFields(t *testing.T, s paas.BatchStore) {
	ctx := t.Context()
	existing := mustInsert(t, s, NewRecord("batch all existing"))
	inserted := withAllFields(NewRecord("batch all inserted"), 1)
	inserted.State = paas.Blocked
	updated := withAllFields(existing, 2)
	updated.State = paas.InProgress

	results := mustWriteBatch(t, ctx, s, []paas.Write{
		insertWrite(inserted),
		updateWrite(updated),
		insertWrite(NewRecord("batch all inserted")), // a duplicate: its result is the stored record
	})
	for i, r := range results {
		require.NoError(t, r.Err, "write %d", i)
	}
	inserted.Seq = results[0].Seq
	require.Equal(t, paas.WriteResult{ID: inserted.ID, Seq: inserted.Seq}, results[0])
	require.Equal(t, results[0], results[2], "a duplicate insert's result must name the stored task")

	for _, want := range []paas.TaskRecord{inserted, updated} {
		got, err := s.Get(ctx, want.ID)
		require.NoError(t, err)
		RequireRecordEqual(t, want, got, "Get after WriteBatch must return every field")
	}
	got, err := s.Unfinished(ctx)
	require.NoError(t, err)
	require.Equal(t, []paas.TaskID{existing.ID, inserted.ID}, recordIDs(got))
	RequireRecordEqual(t, updated, got[0], "Unfinished after WriteBatch must return every field")
	RequireRecordEqual(t, inserted, got[1], "Unfinished after WriteBatch must return every field")
}

func testNoSharedMemory(t *testing.T, s paas.TaskStore) {
	// Each case scribbles on the Program, DependsOn and Checkpoint slices the caller holds and
	// checks that the store did not see it. The service mutates records it has handed over, so
	// sharing would corrupt the store.
	requireIntact := func(t *testing.T, want paas.TaskRecord) {
		t.Helper()
		got, err := s.Get(t.Context(), want.ID)
		require.NoError(t, err)
		requireSlicesEqual(t, want, got)
	}

	t.Run("InsertArgument", func(t *testing.T) {
		rec := withAllFields(NewRecord("insert argument"), 1)
		want := rec.Clone()
		mustInsert(t, s, rec)
		scribble(rec)
		requireIntact(t, want)
	})
	t.Run("InsertResult", func(t *testing.T) {
		got := mustInsert(t, s, withAllFields(NewRecord("insert result"), 2))
		want := got.Clone()
		scribble(got)
		requireIntact(t, want)
	})
	t.Run("DuplicateInsertResult", func(t *testing.T) {
		orig := mustInsert(t, s, withAllFields(NewRecord("duplicate result"), 3))
		want := orig.Clone()
		got := mustInsert(t, s, NewRecord("duplicate result"))
		require.Equal(t, orig.ID, got.ID)
		scribble(got)
		requireIntact(t, want)
	})
	t.Run("GetResult", func(t *testing.T) {
		rec := mustInsert(t, s, withAllFields(NewRecord("get result"), 4))
		want := rec.Clone()
		got, err := s.Get(t.Context(), rec.ID)
		require.NoError(t, err)
		scribble(got)
		requireIntact(t, want)
	})
	t.Run("UpdateArgument", func(t *testing.T) {
		rec := mustInsert(t, s, NewRecord("update argument"))
		rec = withAllFields(rec, 5)
		rec.State = paas.InProgress
		rec.Program = []byte("update argument")
		want := rec.Clone()
		require.NoError(t, s.Update(t.Context(), rec))
		scribble(rec)
		requireIntact(t, want)
	})
	t.Run("UnfinishedResult", func(t *testing.T) {
		rec := mustInsert(t, s, withAllFields(NewRecord("unfinished result"), 6))
		want := rec.Clone()
		got, err := s.Unfinished(t.Context())
		require.NoError(t, err)
		for _, r := range got {
			scribble(r)
		}
		requireIntact(t, want)
	})
}

func testTimesRoundTrip(t *testing.T, s paas.TaskStore) {
	ctx := t.Context()
	// Distinct times with sub-second parts, so that a store that swaps fields or drops
	// fractions fails.
	base := time.Date(2031, time.March, 4, 5, 6, 7, 891_234_000, time.UTC)
	rec := NewRecord("times")
	rec.CreatedAt = base
	rec.UpdatedAt = base.Add(1_001 * time.Microsecond)
	got := mustInsert(t, s, rec)
	RequireRecordEqual(t, withSeq(rec, got.Seq), got)

	rec = got
	rec.State = paas.Retrying
	rec.Attempts = 1
	rec.UpdatedAt = base.Add(2 * time.Second)
	rec.NextAttemptAt = base.Add(time.Minute + 333*time.Microsecond)
	require.NoError(t, s.Update(ctx, rec))

	stored, err := s.Get(ctx, rec.ID)
	require.NoError(t, err)
	assert.True(t, stored.CreatedAt.Equal(base), "CreatedAt: want %v, got %v", base, stored.CreatedAt)
	assert.True(t, stored.UpdatedAt.Equal(rec.UpdatedAt), "UpdatedAt: want %v, got %v", rec.UpdatedAt, stored.UpdatedAt)
	assert.True(t, stored.NextAttemptAt.Equal(rec.NextAttemptAt), "NextAttemptAt: want %v, got %v", rec.NextAttemptAt, stored.NextAttemptAt)
	RequireRecordEqual(t, rec, stored)
}
