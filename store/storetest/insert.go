package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
)

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
