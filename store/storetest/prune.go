package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
)

// pruneCutoff returns the time the prune tests prune before: an hour ago, at the precision of
// NewRecord's times, so that a store keeping microseconds compares the records' times with it
// exactly.
func pruneCutoff() time.Time { return time.Now().UTC().Truncate(time.Microsecond).Add(-time.Hour) }

// mustSetUpdated updates rec to state, last updated at updatedAt, and returns it as stored.
func mustSetUpdated(t *testing.T, s paas.TaskStore, rec paas.TaskRecord, state paas.TaskState, updatedAt time.Time) paas.TaskRecord {
	t.Helper()
	rec.State = state
	rec.UpdatedAt = updatedAt
	require.NoError(t, s.Update(t.Context(), rec))
	return rec
}

func mustPrune(t *testing.T, s paas.TaskStore, before time.Time) int {
	t.Helper()
	n, err := s.Prune(t.Context(), before)
	require.NoError(t, err)
	return n
}

func testPrune(t *testing.T, s paas.TaskStore) {
	ctx := t.Context()
	cutoff := pruneCutoff()
	// A task of every state last updated at each of these times: long before the cutoff, just
	// before it, exactly at it (not before, so kept), and after it.
	times := []time.Time{
		time.Date(2001, time.February, 3, 4, 5, 6, 0, time.UTC),
		cutoff.Add(-time.Microsecond),
		cutoff,
		cutoff.Add(time.Minute),
	}
	var all []paas.TaskRecord
	pruned := make(map[paas.TaskID]bool)
	for i, at := range times {
		for _, state := range paas.States {
			rec := mustInsert(t, s, withAllFields(NewRecord(fmt.Sprintf("prune %s %d", state, i)), i+1))
			rec = mustSetUpdated(t, s, rec, state, at)
			all = append(all, rec)
			if state.Final() && at.Before(cutoff) {
				pruned[rec.ID] = true
			}
		}
	}
	unfinished, err := s.Unfinished(ctx)
	require.NoError(t, err)

	n := mustPrune(t, s, cutoff)
	require.Equal(t, len(pruned), n,
		"Prune must delete exactly the Completed, Failed and Cancelled tasks updated before its argument, and count them")
	for _, rec := range all {
		got, err := s.Get(ctx, rec.ID)
		if pruned[rec.ID] {
			require.ErrorIs(t, err, paas.ErrTaskNotFound, "Get of a pruned %s task updated at %v", rec.State, rec.UpdatedAt)
			continue
		}
		require.NoError(t, err, "Prune must keep a %s task updated at %v (cutoff %v)", rec.State, rec.UpdatedAt, cutoff)
		RequireRecordEqual(t, rec, got, "Prune must leave the tasks it keeps unchanged")
	}
	after, err := s.Unfinished(ctx)
	require.NoError(t, err)
	require.Equal(t, recordIDs(unfinished), recordIDs(after), "Prune must not change Unfinished, however old the tasks")
	for i := range unfinished {
		RequireRecordEqual(t, unfinished[i], after[i], "Unfinished record %d after Prune", i)
	}

	require.Zero(t, mustPrune(t, s, cutoff), "a second Prune with the same argument has nothing left to delete")

	// A later cutoff takes the remaining final tasks, and still no unfinished one.
	var final int
	for _, rec := range all {
		if rec.State.Final() && !pruned[rec.ID] {
			final++
		}
	}
	require.Equal(t, final, mustPrune(t, s, time.Now().Add(time.Hour)))
	after, err = s.Unfinished(ctx)
	require.NoError(t, err)
	require.Equal(t, recordIDs(unfinished), recordIDs(after), "Prune must never delete an unfinished task")
}

func testPruneForgetsKey(t *testing.T, s paas.TaskStore) {
	ctx := t.Context()
	cutoff := pruneCutoff()
	kept := mustSetUpdated(t, s, mustInsert(t, s, NewRecord("kept")), paas.Failed, cutoff.Add(time.Minute))
	waiting := mustInsert(t, s, NewRecord("waiting"))
	// The task pruned has the greatest Seq given so far: the next must still be greater.
	old := mustSetUpdated(t, s, mustInsert(t, s, NewRecord("pruned")), paas.Completed, cutoff.Add(-time.Minute))
	require.Equal(t, 1, mustPrune(t, s, cutoff))

	again := NewRecord("pruned")
	got, err := s.Insert(ctx, again)
	require.NoError(t, err)
	require.Equal(t, again.ID, got.ID, "after Prune, an Insert of a pruned task's key must make a new task")
	require.NotEqual(t, old.ID, got.ID)
	require.Greater(t, got.Seq, old.Seq, "a task inserted after Prune must get a Seq greater than every Seq given before, pruned or not")
	RequireRecordEqual(t, withSeq(again, got.Seq), got)
	stored, err := s.Get(ctx, again.ID)
	require.NoError(t, err)
	RequireRecordEqual(t, got, stored)
	_, err = s.Get(ctx, old.ID)
	require.ErrorIs(t, err, paas.ErrTaskNotFound, "the new task must not bring the pruned one back")

	dup, err := s.Insert(ctx, NewRecord("kept"))
	require.NoError(t, err)
	require.Equal(t, kept.ID, dup.ID, "Prune must keep the keys of the tasks it keeps")
	require.Equal(t, []paas.TaskID{waiting.ID, again.ID}, mustUnfinishedIDs(t, s))
}

func testPruneEmpty(t *testing.T, s paas.TaskStore) {
	require.Zero(t, mustPrune(t, s, time.Now().Add(time.Hour)), "Prune of an empty store")

	// Unfinished tasks, however old, are not prunable either.
	var recs []paas.TaskRecord
	for _, state := range paas.States {
		if state.Final() {
			continue
		}
		recs = append(recs, mustSetUpdated(t, s, mustInsert(t, s, NewRecord("old "+state.String())), state, time.Unix(1, 0).UTC()))
	}
	require.Zero(t, mustPrune(t, s, time.Now().Add(time.Hour)), "Prune of a store with only unfinished tasks")
	require.Equal(t, recordIDs(recs), mustUnfinishedIDs(t, s))
}

func testPruneCancelledContext(t *testing.T, s paas.TaskStore) {
	ctx := t.Context()
	rec := mustSetUpdated(t, s, mustInsert(t, s, NewRecord("prunable")), paas.Cancelled, pruneCutoff().Add(-time.Minute))
	cancelled, cancel := context.WithCancel(ctx)
	cancel()

	n, err := s.Prune(cancelled, time.Now().Add(time.Hour))
	require.ErrorIs(t, err, context.Canceled)
	require.Zero(t, n, "Prune with a cancelled context must delete nothing")
	got, err := s.Get(ctx, rec.ID)
	require.NoError(t, err, "Prune with a cancelled context must delete nothing")
	RequireRecordEqual(t, rec, got)
	dup, err := s.Insert(ctx, NewRecord("prunable"))
	require.NoError(t, err)
	require.Equal(t, rec.ID, dup.ID, "Prune with a cancelled context must not free a key")
}

func testPruneConcurrentInsert(t *testing.T, s paas.TaskStore) {
	// Inserts of the keys of the tasks being pruned race with Prune. Each must either find the
	// old task (it came first) or make a new one (it came after), never fail or see a task half
	// pruned.
	const tasks, rounds = 16, 4
	ctx := t.Context()
	cutoff := pruneCutoff()
	for round := range rounds {
		old := make([]paas.TaskRecord, tasks)
		for i := range old {
			rec := mustInsert(t, s, NewRecord(fmt.Sprintf("race %d %d", round, i)))
			old[i] = mustSetUpdated(t, s, rec, paas.Completed, cutoff.Add(-time.Minute))
		}
		fresh := make([]paas.TaskRecord, tasks)
		got := make([]paas.TaskRecord, tasks)
		errs := make([]error, tasks)
		var pruned int
		var pruneErr error

		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			<-start
			pruned, pruneErr = s.Prune(ctx, cutoff)
		})
		for i := range fresh {
			fresh[i] = NewRecord(fmt.Sprintf("race %d %d", round, i))
			wg.Go(func() {
				<-start
				got[i], errs[i] = s.Insert(ctx, fresh[i])
			})
		}
		close(start)
		wg.Wait()

		require.NoError(t, pruneErr, "round %d", round)
		require.Equal(t, tasks, pruned, "round %d: a duplicate Insert changes nothing, so every old task is pruned", round)
		var want []paas.TaskID
		for i, err := range errs {
			require.NoError(t, err, "round %d, Insert %d", round, i)
			_, err = s.Get(ctx, old[i].ID)
			require.ErrorIs(t, err, paas.ErrTaskNotFound, "round %d, task %d must be pruned", round, i)
			switch got[i].ID {
			case old[i].ID: // before Prune
			case fresh[i].ID: // after Prune
				stored, err := s.Get(ctx, fresh[i].ID)
				require.NoError(t, err, "round %d, Insert %d", round, i)
				RequireRecordEqual(t, withSeq(fresh[i], got[i].Seq), stored)
				want = append(want, fresh[i].ID)
			default:
				t.Fatalf("round %d, Insert %d returned task %s, neither the old one nor its own", round, i, got[i].ID)
			}
		}
		unfinished := mustUnfinishedIDs(t, s)
		require.ElementsMatch(t, want, unfinished, "round %d", round)
		// Clear the round's new tasks, so that the next round starts from an empty store.
		for _, id := range want {
			rec, err := s.Get(ctx, id)
			require.NoError(t, err)
			mustSetUpdated(t, s, rec, paas.Cancelled, cutoff.Add(-time.Minute))
		}
		require.Equal(t, len(want), mustPrune(t, s, cutoff), "round %d", round)
	}
}

// testPruneKeepsDependencies checks that Prune keeps a finished task while an unfinished task
// depends on it, and deletes it once none does.
func testPruneKeepsDependencies(t *testing.T, s paas.TaskStore) {
	ctx := t.Context()
	dep := mustInsert(t, s, NewRecord("dependency"))
	dep.State = paas.Completed
	require.NoError(t, s.Update(ctx, dep))
	lone := mustInsert(t, s, NewRecord("no dependents"))
	lone.State = paas.Completed
	require.NoError(t, s.Update(ctx, lone))

	dependent := NewRecord("dependent")
	dependent.State = paas.Blocked
	dependent.DependsOn = []paas.TaskID{paas.NewTaskID(), dep.ID}
	dependent = mustInsert(t, s, dependent)

	later := dependent.UpdatedAt.Add(time.Hour)
	n, err := s.Prune(ctx, later)
	require.NoError(t, err)
	require.Equal(t, 1, n, "Prune must delete only the task no unfinished task depends on")
	_, err = s.Get(ctx, lone.ID)
	require.ErrorIs(t, err, paas.ErrTaskNotFound)
	got, err := s.Get(ctx, dep.ID)
	require.NoError(t, err, "Prune must keep a task that an unfinished task depends on")
	RequireRecordEqual(t, dep, got)

	dependent.State = paas.Completed
	require.NoError(t, s.Update(ctx, dependent))
	n, err = s.Prune(ctx, later)
	require.NoError(t, err)
	require.Equal(t, 2, n, "once its dependents have finished, a dependency is pruned like any task")
	_, err = s.Get(ctx, dep.ID)
	require.ErrorIs(t, err, paas.ErrTaskNotFound)
}
