// Package storetest is a conformance suite for implementations of paas.TaskStore.
//
// The TaskStore doc comments state a contract; this package states the same contract as tests,
// so that every store is held to it in the same way. A store author calls Run from an ordinary
// test in the store's package:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) paas.TaskStore {
//			db := openTestDatabase(t) // clean it up with t.Cleanup
//			return mystore.New(db)
//		})
//	}
//
// If the store also implements paas.BatchStore, Run checks WriteBatch too: the subtests named
// "WriteBatch..." are skipped for stores that do not.
//
// Run calls newStore once per subtest and expects an empty store each time; it never closes
// the store, so register any cleanup with t.Cleanup inside newStore. The subtests run one after
// the other, never in parallel, so stores backed by a single shared resource only need to empty
// it between calls. A failing subtest is named after the clause of the contract it checks, e.g.
// "TestConformance/UpdateKeepsIdentity"; run just that one with go test -run.
//
// Where the doc comments leave a detail implicit, the suite settles it the way the service
// relies on it: Seq is never zero (zero means unassigned), a Seq passed to Insert is ignored,
// an Update that passes zero values (an empty LastError, a zero NextAttemptAt) stores them, and
// an Update never moves a task's key or its place in Seq order.
//
// The suite builds its records with NewRecord, whose times are in UTC and truncated to the
// microsecond, so that stores that keep times at microsecond precision (PostgreSQL, for one)
// pass. Times are compared with time.Time.Equal: a store may return them in another location
// and without the monotonic clock reading.
//
// Records round-trip whole: every field of paas.TaskRecord, including DependsOn, Checkpoint and
// the other fields that NewRecord leaves zero, must come back as it went in, through Insert,
// Update, Get, Unfinished and WriteBatch; an empty DependsOn or Checkpoint may come back nil.
// Prune is held to its doc comment: it deletes exactly the final tasks last updated strictly
// before its argument that no unfinished task depends on, frees their keys, and leaves Seq
// increasing past them. An update whose Version is not zero is fenced (see
// paas.TaskRecord.Version); the other tests leave Version zero.
//
// For tests of code that uses a store, Faulty wraps any TaskStore and fails the inserts, updates,
// batches or prunes it is told to.
package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
)

// NewRecord returns a valid new task record for program, as the service would hand it to
// TaskStore.Insert: Pending, with a fresh ID, the key paas.KeyOf("test", program,
// paas.BackendNative), weight 1, and CreatedAt and UpdatedAt set to now in UTC, truncated to the
// microsecond. Seq is zero, for the store to assign, and so are Priority, DependsOn, Timeout,
// Restarts, Checkpoint, FailedDependency and WaitingSince, as for a task submitted without
// options. Records built from the same program share a key, so inserting a second one exercises
// deduplication.
func NewRecord(program string) paas.TaskRecord {
	now := time.Now().UTC().Truncate(time.Microsecond)
	const rk paas.RoutingKey = "test"
	return paas.TaskRecord{
		ID:         paas.NewTaskID(),
		Key:        paas.KeyOf(rk, []byte(program), paas.BackendNative),
		RoutingKey: rk,
		Backend:    paas.BackendNative,
		Program:    []byte(program),
		Weight:     1,
		State:      paas.Pending,
		CreatedAt:  now,
		UpdatedAt:  now,
	}
}

// Run runs the conformance suite against the stores that newStore returns. Each subtest calls
// newStore for a store of its own, which must start empty.
func Run(t *testing.T, newStore func(t *testing.T) paas.TaskStore) {
	t.Helper()

	tests := []struct {
		name string
		fn   func(t *testing.T, s paas.TaskStore)
	}{
		{"Insert", testInsert},
		{"InsertIgnoresCallerSeq", testInsertIgnoresCallerSeq},
		{"SeqIncreases", testSeqIncreases},
		{"InsertDuplicateKey", testInsertDuplicateKey},
		{"InsertDuplicateKeyConcurrent", testInsertDuplicateKeyConcurrent},
		{"InsertConcurrent", testInsertConcurrent},
		{"Update", testUpdate},
		{"UpdateClearsFields", testUpdateClearsFields},
		{"UpdateKeepsIdentity", testUpdateKeepsIdentity},
		{"UpdateUnknownID", testUpdateUnknownID},
		{"GetUnknownID", testGetUnknownID},
		{"Unfinished", testUnfinished},
		{"UnfinishedEmpty", testUnfinishedEmpty},
		{"NoSharedMemory", testNoSharedMemory},
		{"TimesRoundTrip", testTimesRoundTrip},
		{"CancelledContext", testCancelledContext},
		{"AllFieldsRoundTrip", testAllFieldsRoundTrip},
		{"BlockedIsUnfinished", testBlockedIsUnfinished},
		{"Prune", testPrune},
		{"PruneForgetsKey", testPruneForgetsKey},
		{"PruneEmpty", testPruneEmpty},
		{"PruneCancelledContext", testPruneCancelledContext},
		{"PruneConcurrentInsert", testPruneConcurrentInsert},
		{"PruneKeepsDependencies", testPruneKeepsDependencies},
		{"UpdateFenced", testUpdateFenced},
		{"GetByKey", testGetByKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			require.NotNil(t, s, "newStore returned nil")
			tt.fn(t, s)
		})
	}

	// The batch clauses apply only to stores that offer group commit; the others skip them,
	// so that one suite serves both kinds.
	batchTests := []struct {
		name string
		fn   func(t *testing.T, s paas.BatchStore)
	}{
		{"WriteBatchMixed", testWriteBatchMixed},
		{"WriteBatchDuplicateKey", testWriteBatchDuplicateKey},
		{"WriteBatchUnknownID", testWriteBatchUnknownID},
		{"WriteBatchCancelledContext", testWriteBatchCancelledContext},
		{"WriteBatchNoSharedMemory", testWriteBatchNoSharedMemory},
		{"WriteBatchAllFields", testWriteBatchAllFields},
		{"WriteBatchFenced", testWriteBatchFenced},
	}
	for _, tt := range batchTests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			require.NotNil(t, s, "newStore returned nil")
			bs, ok := s.(paas.BatchStore)
			if !ok {
				t.Skip("the store does not implement paas.BatchStore")
			}
			tt.fn(t, bs)
		})
	}
}

func testInsert(t *testing.T, s paas.TaskStore) {
	ctx := t.Context()
	rec := NewRecord("insert")

	got, err := s.Insert(ctx, rec)
	require.NoError(t, err)
	// Zero is what an unassigned Seq looks like, so a store must not hand it out.
	require.NotZero(t, got.Seq, "Insert must assign a Seq")
	want := rec
	want.Seq = got.Seq
	RequireRecordEqual(t, want, got, "Insert must return the record it stored")

	stored, err := s.Get(ctx, rec.ID)
	require.NoError(t, err)
	RequireRecordEqual(t, want, stored, "Get must return the inserted record")
}

func testInsertIgnoresCallerSeq(t *testing.T, s paas.TaskStore) {
	ctx := t.Context()
	first := mustInsert(t, s, NewRecord("first"))

	// A caller passing a Seq that is already taken must not get it: Seq is the store's.
	rec := NewRecord("second")
	rec.Seq = first.Seq
	second := mustInsert(t, s, rec)
	require.Greater(t, second.Seq, first.Seq, "Insert must assign Seq itself, ignoring rec.Seq")

	stored, err := s.Get(ctx, rec.ID)
	require.NoError(t, err)
	assert.Equal(t, second.Seq, stored.Seq)
}

func testSeqIncreases(t *testing.T, s paas.TaskStore) {
	ctx := t.Context()
	programs := []string{"a", "b", "c", "d", "e"}
	var prev uint64
	for i, p := range programs {
		rec := mustInsert(t, s, NewRecord(p))
		if i > 0 {
			require.Greater(t, rec.Seq, prev, "Seq of insert %d must exceed the previous one", i)
		}
		prev = rec.Seq

		stored, err := s.Get(ctx, rec.ID)
		require.NoError(t, err)
		require.Equal(t, rec.Seq, stored.Seq, "Get must return the Seq that Insert assigned")
	}

	// A duplicate insert assigns no Seq, but the next new task still gets a greater one.
	mustInsert(t, s, NewRecord("a"))
	next := mustInsert(t, s, NewRecord("f"))
	require.Greater(t, next.Seq, prev)
}

func testInsertDuplicateKey(t *testing.T, s paas.TaskStore) {
	// One subtest per state, since the key stays taken whatever becomes of the task; all share
	// the store, each with its own program.
	for _, state := range paas.States {
		t.Run(state.String(), func(t *testing.T) {
			ctx := t.Context()
			program := "dup-" + state.String()
			orig := mustInsert(t, s, NewRecord(program))
			if state != paas.Pending {
				orig.State = state
				orig.Attempts = 1
				orig.LastError = "last error of " + state.String()
				orig.UpdatedAt = orig.UpdatedAt.Add(time.Second)
				require.NoError(t, s.Update(ctx, orig))
			}
			before := mustUnfinishedIDs(t, s)

			dup := NewRecord(program)
			require.Equal(t, orig.Key, dup.Key)
			require.NotEqual(t, orig.ID, dup.ID)
			dup.UpdatedAt = dup.UpdatedAt.Add(time.Hour)

			got, err := s.Insert(ctx, dup)
			require.NoError(t, err, "a duplicate key is not an error")
			RequireRecordEqual(t, orig, got, "Insert of a duplicate key must return the existing record")

			stored, err := s.Get(ctx, orig.ID)
			require.NoError(t, err)
			RequireRecordEqual(t, orig, stored, "Insert of a duplicate key must leave the existing record unchanged")

			_, err = s.Get(ctx, dup.ID)
			require.ErrorIs(t, err, paas.ErrTaskNotFound, "Insert of a duplicate key must not store the new record")
			require.Equal(t, before, mustUnfinishedIDs(t, s), "Insert of a duplicate key must store nothing")
		})
	}
}

func testInsertDuplicateKeyConcurrent(t *testing.T, s paas.TaskStore) {
	// A store that checks for the key and inserts in two steps loses only when two Inserts
	// interleave between the steps, so try a few keys to make such a race all but certain to show.
	const goroutines, rounds = 32, 8
	ctx := t.Context()

	for round := range rounds {
		program := fmt.Sprintf("concurrent-%d", round)
		recs := make([]paas.TaskRecord, goroutines)
		passed := make(map[paas.TaskID]bool, goroutines)
		for i := range recs {
			recs[i] = NewRecord(program)
			passed[recs[i].ID] = true
		}
		got := make([]paas.TaskRecord, goroutines)
		errs := make([]error, goroutines)

		// The goroutines wait on start so that their Inserts overlap as much as possible.
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range goroutines {
			wg.Go(func() {
				<-start
				got[i], errs[i] = s.Insert(ctx, recs[i])
			})
		}
		close(start)
		wg.Wait()

		for i, err := range errs {
			require.NoError(t, err, "round %d, Insert %d", round, i)
		}
		winner := got[0]
		require.True(t, passed[winner.ID], "round %d: Insert returned an ID that no caller passed", round)
		for i, rec := range got {
			require.Equal(t, winner.ID, rec.ID,
				"round %d: concurrent Inserts of one key must all return the same task (Insert %d)", round, i)
			require.Equal(t, winner.Seq, rec.Seq, "round %d, Insert %d", round, i)
		}

		unfinished, err := s.Unfinished(ctx)
		require.NoError(t, err)
		require.Len(t, unfinished, round+1, "round %d: concurrent Inserts of one key must store exactly one task", round)
		require.Equal(t, winner.ID, unfinished[round].ID, "round %d", round)
		for _, rec := range recs {
			if rec.ID == winner.ID {
				continue
			}
			_, err := s.Get(ctx, rec.ID)
			require.ErrorIs(t, err, paas.ErrTaskNotFound, "round %d: a losing concurrent Insert must store nothing", round)
		}
	}
}

func testInsertConcurrent(t *testing.T, s paas.TaskStore) {
	const n = 32
	ctx := t.Context()

	got := make([]paas.TaskRecord, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			got[i], errs[i] = s.Insert(ctx, NewRecord(fmt.Sprintf("distinct-%d", i)))
		})
	}
	close(start)
	wg.Wait()

	seqs := make(map[uint64]paas.TaskID, n)
	for i, err := range errs {
		require.NoError(t, err, "Insert %d", i)
		other, dup := seqs[got[i].Seq]
		require.False(t, dup, "tasks %s and %s were given the same Seq %d", other, got[i].ID, got[i].Seq)
		seqs[got[i].Seq] = got[i].ID
	}

	unfinished, err := s.Unfinished(ctx)
	require.NoError(t, err)
	require.Len(t, unfinished, n, "concurrent Inserts of distinct keys must each store a task")
	requireSeqOrder(t, unfinished)
}

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

func testCancelledContext(t *testing.T, s paas.TaskStore) {
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()

	existing := mustInsert(t, s, NewRecord("existing"))

	t.Run("Insert", func(t *testing.T) {
		rec := NewRecord("cancelled insert")
		_, err := s.Insert(cancelled, rec)
		require.ErrorIs(t, err, context.Canceled)

		_, err = s.Get(t.Context(), rec.ID)
		require.ErrorIs(t, err, paas.ErrTaskNotFound, "Insert with a cancelled context must store nothing")
		// Nor may it have taken the key.
		got, err := s.Insert(t.Context(), rec)
		require.NoError(t, err)
		require.Equal(t, rec.ID, got.ID, "Insert with a cancelled context must not take the key")
	})
	t.Run("InsertDuplicate", func(t *testing.T) {
		_, err := s.Insert(cancelled, NewRecord("existing"))
		require.ErrorIs(t, err, context.Canceled)
	})
	t.Run("Update", func(t *testing.T) {
		rec := existing
		rec.State = paas.Cancelled
		rec.UpdatedAt = rec.UpdatedAt.Add(time.Second)
		err := s.Update(cancelled, rec)
		require.ErrorIs(t, err, context.Canceled)

		got, err := s.Get(t.Context(), existing.ID)
		require.NoError(t, err)
		RequireRecordEqual(t, existing, got, "Update with a cancelled context must change nothing")
	})
	t.Run("Get", func(t *testing.T) {
		_, err := s.Get(cancelled, existing.ID)
		require.ErrorIs(t, err, context.Canceled)
	})
	t.Run("Unfinished", func(t *testing.T) {
		_, err := s.Unfinished(cancelled)
		require.ErrorIs(t, err, context.Canceled)
	})
}

// RequireRecordEqual fails t unless got has the fields of want, with times compared by
// time.Time.Equal (a store may drop the location and monotonic reading) and a nil Program,
// DependsOn or Checkpoint equal to an empty one. Store authors use it in their own tests.
func RequireRecordEqual(t *testing.T, want, got paas.TaskRecord, msgAndArgs ...any) {
	t.Helper()
	for _, f := range []struct {
		name      string
		want, got time.Time
	}{
		{"NextAttemptAt", want.NextAttemptAt, got.NextAttemptAt},
		{"WaitingSince", want.WaitingSince, got.WaitingSince},
		{"CreatedAt", want.CreatedAt, got.CreatedAt},
		{"UpdatedAt", want.UpdatedAt, got.UpdatedAt},
	} {
		if !f.want.Equal(f.got) || f.want.IsZero() != f.got.IsZero() {
			require.Fail(t, fmt.Sprintf("%s differs: want %v, got %v", f.name, f.want, f.got), msgAndArgs...)
		}
	}
	require.Equal(t, withoutTimes(want), withoutTimes(got), msgAndArgs...)
}

// withoutTimes returns r with the fields that require.Equal cannot compare faithfully cleared:
// equal times may differ in location and monotonic reading, and a store may return a nil
// Program, DependsOn or Checkpoint for an empty one.
func withoutTimes(r paas.TaskRecord) paas.TaskRecord {
	r.NextAttemptAt, r.WaitingSince, r.CreatedAt, r.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if len(r.Program) == 0 {
		r.Program = nil
	}
	if len(r.DependsOn) == 0 {
		r.DependsOn = nil
	}
	if len(r.Checkpoint) == 0 {
		r.Checkpoint = nil
	}
	return r
}

func requireSeqOrder(t *testing.T, recs []paas.TaskRecord) {
	t.Helper()
	for i := 1; i < len(recs); i++ {
		require.Less(t, recs[i-1].Seq, recs[i].Seq, "records %d and %d are not in strictly increasing Seq order", i-1, i)
	}
}

func mustInsert(t *testing.T, s paas.TaskStore, rec paas.TaskRecord) paas.TaskRecord {
	t.Helper()
	got, err := s.Insert(t.Context(), rec)
	require.NoError(t, err)
	return got
}

func mustUnfinishedIDs(t *testing.T, s paas.TaskStore) []paas.TaskID {
	t.Helper()
	recs, err := s.Unfinished(t.Context())
	require.NoError(t, err)
	return recordIDs(recs)
}

func recordIDs(recs []paas.TaskRecord) []paas.TaskID {
	ids := make([]paas.TaskID, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	return ids
}

func withSeq(r paas.TaskRecord, seq uint64) paas.TaskRecord {
	r.Seq = seq
	return r
}
