package service

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/internal/attempt"
	"github.com/zkpaas/paas/scheduler"
)

// run dispatches, commits and returns the attempts started.
func (c *harness) run() []start {
	c.dispatch()
	c.commitAll()
	return c.takeStarts()
}

// finishRunning ends the attempt of id with err and commits what follows.
func (c *harness) finishRunning(id paas.TaskID, err error) {
	c.handlerDone(id, err)
	c.commitAll()
}

func (c *harness) submitAfter(rec paas.TaskRecord, deps ...paas.TaskID) paas.TaskID {
	c.t.Helper()
	rec.DependsOn = deps
	reply := make(chan submitReply, 1)
	c.core.submit(rec, deps, true, reply)
	c.commitAll()
	r := <-reply
	require.NoError(c.t, r.err)
	return r.id
}

func TestCoreDependentRunsOnceEveryDependencyCompleted(t *testing.T) {
	c := newHarness(t, map[paas.Backend]int64{paas.BackendNative: 2}, noJitter(3))
	a := c.submit(record("a", paas.BackendNative, 1))
	b := c.submit(record("b", paas.BackendNative, 1))
	dependent := c.submitAfter(record("c", paas.BackendNative, 1), a, b)
	assert.Equal(t, paas.Blocked, c.state_(dependent))
	assert.Equal(t, paas.StatusSummary{Blocked: 1, Pending: 2}, c.summary())

	require.Len(t, c.run(), 2)
	c.finishRunning(a, nil)
	assert.Equal(t, paas.Blocked, c.state_(dependent), "one dependency is not enough")
	c.finishRunning(b, nil)
	assert.Equal(t, paas.Pending, c.state_(dependent), "unblocked by the event, no polling")
	starts := c.run()
	require.Len(t, starts, 1)
	assert.Equal(t, dependent, starts[0].task.ID)
	assert.Equal(t, []paas.TaskID{a, b}, starts[0].task.DependsOn, "the handler learns its dependencies")
}

func TestCoreFailedDependencyFailsDependentsInCascade(t *testing.T) {
	c := nativeHarness(t, 3)
	a := c.submit(record("a", paas.BackendNative, 1))
	b := c.submitAfter(record("b", paas.BackendNative, 1), a)
	d := c.submitAfter(record("d", paas.BackendNative, 1), b)
	res := make(chan outcome, 1)
	c.wait(d, res)

	c.run()
	c.finishRunning(a, paas.Permanent(errors.New("bad block")))
	o := <-res
	require.NoError(t, o.err)
	assert.Equal(t, paas.Failed, o.res.State)
	assert.Equal(t, b, o.res.FailedDependency, "d names the dependency that failed it")
	var dep *paas.DependencyError
	require.ErrorAs(t, o.res.Err(), &dep)
	assert.Equal(t, b, dep.ID)
	assert.Equal(t, paas.StatusSummary{Failed: 3}, c.summary())
}

func TestCoreCancelledDependencyFailsDependent(t *testing.T) {
	c := nativeHarness(t, 3)
	a := c.submit(record("a", paas.BackendNative, 1))
	b := c.submitAfter(record("b", paas.BackendNative, 1), a)
	ack := make(chan error, 1)
	c.cancel(a, ack)
	c.commitAll()
	require.NoError(t, <-ack)
	_, cached := c.status(b)
	assert.False(t, cached, "b ended Failed and left the cache")
	assert.Equal(t, paas.StatusSummary{Failed: 1, Cancelled: 1}, c.summary())
}

func TestCoreDependencyEndingBeforeTheInsertCommitsIsNotMissed(t *testing.T) {
	c := nativeHarness(t, 3)
	a := c.submit(record("a", paas.BackendNative, 1))
	c.run()
	rec := record("b", paas.BackendNative, 1)
	rec.DependsOn = []paas.TaskID{a}
	reply := make(chan submitReply, 1)
	c.core.submit(rec, []paas.TaskID{a}, true, reply)
	insert := c.writes
	c.writes = nil
	c.inflight--
	c.handlerDone(a, nil) // a completes while b's insert is in flight
	c.commitAll()
	c.inflight++
	c.commit(written{Write: paas.Write{Insert: true, Record: withSeq(insert[0].Record, 99)}})
	require.NoError(t, (<-reply).err)
	c.commitAll()
	assert.Equal(t, paas.Pending, c.state_(rec.ID))
}

func withSeq(r paas.TaskRecord, seq uint64) paas.TaskRecord { r.Seq = seq; return r }

func TestCoreSubmitAsksToResolveDependenciesThatEndedUnseen(t *testing.T) {
	c := nativeHarness(t, 3)
	reply := make(chan submitReply, 1)
	c.core.submit(record("b", paas.BackendNative, 1), []paas.TaskID{paas.NewTaskID()}, true, reply)
	assert.ErrorIs(t, (<-reply).err, errResolve)
	assert.Empty(t, c.writes)
}

// Identity is decided first: a duplicate that names itself as a dependency is the task.
func TestCoreDuplicateIgnoresItsOptionsEvenADependencyOnItself(t *testing.T) {
	c := nativeHarness(t, 3)
	rec := record("a", paas.BackendNative, 1)
	id := c.submit(rec)
	dup := rec
	dup.ID = paas.NewTaskID()
	dup.DependsOn = []paas.TaskID{id}
	reply := make(chan submitReply, 1)
	c.core.submit(dup, []paas.TaskID{id}, true, reply)
	r := <-reply
	require.NoError(t, r.err)
	assert.Equal(t, id, r.id)
}

func TestCorePriorityOrdersTheQueueAndFIFOWithinAPriority(t *testing.T) {
	c := nativeHarness(t, 3)
	busy := c.submit(record("busy", paas.BackendNative, 1))
	c.run()
	prio := func(name string, p int) paas.TaskID {
		r := record(name, paas.BackendNative, 1)
		r.Priority = p
		return c.submit(r)
	}
	low := prio("low", -1)
	mid1 := prio("mid1", 0)
	high := prio("high", 5)
	mid2 := prio("mid2", 0)
	var order []paas.TaskID
	prev := busy
	for range 4 {
		c.finishRunning(prev, nil)
		starts := c.run()
		require.Len(t, starts, 1)
		prev = starts[0].task.ID
		order = append(order, prev)
	}
	assert.Equal(t, []paas.TaskID{high, mid1, mid2, low}, order)
}

func TestCoreHeavyHighPriorityTaskHoldsBackLighterLowerOnes(t *testing.T) {
	c := newHarness(t, map[paas.Backend]int64{paas.BackendNative: 2}, noJitter(3))
	first := c.submit(record("first", paas.BackendNative, 1))
	c.run()
	heavy := record("heavy", paas.BackendNative, 2)
	heavy.Priority = 1
	heavyID := c.submit(heavy)
	for _, n := range []string{"l1", "l2", "l3"} {
		c.submit(record(n, paas.BackendNative, 1))
	}
	assert.Empty(t, c.run(), "one slot is free, but the head needs two: nothing overtakes it")
	c.finishRunning(first, nil)
	starts := c.run()
	require.Len(t, starts, 1)
	assert.Equal(t, heavyID, starts[0].task.ID)
}

func TestCoreNotReadyBlocksWithoutSpendingTheBudget(t *testing.T) {
	c := nativeHarness(t, 0)
	id := c.submit(record("a", paas.BackendNative, 1))
	c.run()
	c.finishRunning(id, paas.NotReady(errors.New("block not final"), time.Minute))
	st, _ := c.status(id)
	assert.Equal(t, paas.Blocked, st.State)
	assert.Equal(t, 0, st.Attempts, "no retry budget spent, even with MaxRetries 0")
	assert.Equal(t, t0.Add(time.Minute), st.NextAttemptAt)
	require.Equal(t, []scheduler.Due{{ID: id, At: t0.Add(time.Minute), Kind: dueAttempt}}, c.timers)
	assert.Equal(t, 1, c.summary().Blocked)

	c.due(c.timers[0])
	c.timers = nil
	c.commitAll()
	starts := c.run()
	require.Len(t, starts, 1)
	assert.Equal(t, 2, starts[0].task.Attempt, "Attempt counts every attempt, a look at input not ready too")
	c.finishRunning(id, nil)
	assert.Equal(t, paas.StatusSummary{Completed: 1}, c.summary())
}

func TestCoreNotReadyForeverFailsAtMaxInputWait(t *testing.T) {
	c := nativeHarness(t, 3)
	c.maxInputWait = 30 * time.Minute
	id := c.submit(record("a", paas.BackendNative, 1))
	res := make(chan outcome, 1)
	c.wait(id, res)
	for i := 0; ; i++ {
		c.run()
		c.finishRunning(id, paas.NotReady(errors.New("batch not sealed"), 10*time.Minute))
		if len(res) > 0 {
			break
		}
		require.Less(t, i, 5, "the bound must stop the waiting")
		c.clock.Advance(10 * time.Minute)
		c.due(c.timers[0])
		c.timers = nil
		c.commitAll()
	}
	o := <-res
	assert.Equal(t, paas.Failed, o.res.State, "waiters are woken")
	assert.Contains(t, o.res.Error, "input not ready for 30m0s, MaxInputWait 30m0s reached")
}

func TestCoreDeadlineCancelsTheAttemptAsATransientFailure(t *testing.T) {
	c := nativeHarness(t, 3)
	c.timeouts = map[paas.Backend]time.Duration{paas.BackendNative: time.Minute}
	id := c.submit(record("a", paas.BackendNative, 1))
	starts := c.run()
	require.Equal(t, []scheduler.Due{{ID: id, At: t0.Add(time.Minute), Kind: dueDeadline}}, c.timers)
	deadline := c.timers[0]
	c.timers = nil

	c.due(deadline)
	ctx := starts[0].ctx
	require.ErrorIs(t, context.Cause(ctx), attempt.ErrTimedOut)
	c.finishRunning(id, ctx.Err())
	st, _ := c.status(id)
	assert.Equal(t, paas.Retrying, st.State)
	assert.Equal(t, 1, st.Attempts, "a timed-out attempt counts")
	assert.Equal(t, "attempt timed out: context canceled", st.LastError)
}

func TestCoreTaskTimeoutOverridesBackendDefaultAndStaleDeadlinesAreIgnored(t *testing.T) {
	c := nativeHarness(t, 3)
	c.timeouts = map[paas.Backend]time.Duration{paas.BackendNative: time.Minute}
	rec := record("a", paas.BackendNative, 1)
	rec.Timeout = time.Hour
	id := c.submit(rec)
	starts := c.run()
	require.Equal(t, t0.Add(time.Hour), c.timers[0].At)
	c.due(scheduler.Due{ID: id, At: t0.Add(time.Minute), Kind: dueDeadline})
	assert.NoError(t, starts[0].ctx.Err(), "not this attempt's deadline")
}

func TestCoreCheckpointIsKeptForResumeAndDroppedOnRestart(t *testing.T) {
	retry := noJitter(3)
	retry.MaxRestarts = 1
	c := newHarness(t, map[paas.Backend]int64{paas.BackendNative: 1}, retry)
	id := c.submit(record("a", paas.BackendNative, 1))
	c.run()

	ack := make(chan error, 1)
	c.saveCheckpoint(id, 1, []byte("request-7"), ack)
	assert.Empty(t, ack, "answered once stored")
	written := c.commitAll()
	require.Len(t, written, 1)
	assert.Equal(t, []byte("request-7"), written[0].Checkpoint)
	assert.Equal(t, paas.InProgress, written[0].State)
	require.NoError(t, <-ack)
	assert.Empty(t, c.takeStarts(), "saving does not restart the handler")

	stale := make(chan error, 1)
	c.saveCheckpoint(id, 2, []byte("x"), stale)
	assert.Error(t, <-stale, "only the running attempt may save")

	c.finishRunning(id, errors.New("network hiccup"))
	c.due(c.timers[0])
	c.timers = nil
	c.commitAll()
	starts := c.run()
	require.Len(t, starts, 1)
	assert.Equal(t, []byte("request-7"), starts[0].task.Checkpoint, "a transient failure resumes from the checkpoint")

	c.finishRunning(id, paas.Restart(errors.New("request expired")))
	st, _ := c.status(id)
	assert.Equal(t, paas.Retrying, st.State)
	assert.Equal(t, 1, st.Restarts)
	assert.Equal(t, 1, st.Attempts, "a restart spends the restart budget, not the retry budget")
	c.due(c.timers[0])
	c.timers = nil
	c.commitAll()
	starts = c.run()
	assert.Nil(t, starts[0].task.Checkpoint, "a restart starts fresh")

	c.finishRunning(id, paas.Restart(errors.New("expired again")))
	assert.Equal(t, paas.StatusSummary{Failed: 1}, c.summary(), "the restart budget is spent")
}

func TestCoreHandlerEndingDuringACheckpointWriteWaitsForIt(t *testing.T) {
	c := nativeHarness(t, 3)
	id := c.submit(record("a", paas.BackendNative, 1))
	c.run()
	ack := make(chan error, 1)
	c.saveCheckpoint(id, 1, []byte("cp"), ack)
	c.handlerDone(id, nil)
	require.Len(t, c.writes, 1, "one write at a time")
	written := c.commitAll()
	require.Len(t, written, 2)
	assert.Equal(t, paas.Completed, written[1].State)
	assert.Equal(t, []byte("cp"), written[1].Checkpoint)
	require.NoError(t, <-ack)
}

func TestCoreReviveGivesAFreshBudget(t *testing.T) {
	c := nativeHarness(t, 0)
	id := c.submit(record("a", paas.BackendNative, 1))
	c.run()
	c.finishRunning(id, errors.New("boom"))
	// The core no longer holds the task; the caller reads it from the store.
	rec := record("a", paas.BackendNative, 1)
	rec.ID, rec.Seq, rec.State, rec.Attempts, rec.LastError = id, 1, paas.Failed, 1, "boom"
	ack := make(chan error, 1)
	c.revive(rec, nil, ack)
	require.Empty(t, ack, "Retry is answered once its write is stored, not before")
	c.commitAll()
	require.NoError(t, <-ack)
	st, _ := c.status(id)
	assert.Equal(t, paas.Pending, st.State)
	assert.Equal(t, 0, st.Attempts)
	assert.Empty(t, st.LastError)
	assert.Equal(t, paas.StatusSummary{Pending: 1}, c.summary(), "a task counts once, under its state now")

	again := make(chan error, 1)
	c.revive(rec, nil, again)
	assert.ErrorIs(t, <-again, paas.ErrNotRetryable, "it is running again")
}

func TestCoreLoadResolvesDependenciesOfBlockedTasks(t *testing.T) {
	c := nativeHarness(t, 3)
	running := record("dep", paas.BackendNative, 1)
	running.Seq = 1
	onUnfinished := record("w1", paas.BackendNative, 1)
	onUnfinished.Seq, onUnfinished.State, onUnfinished.DependsOn = 2, paas.Blocked, []paas.TaskID{running.ID}
	done, failed := paas.NewTaskID(), paas.NewTaskID()
	onDone := record("w2", paas.BackendNative, 1)
	onDone.Seq, onDone.State, onDone.DependsOn = 3, paas.Blocked, []paas.TaskID{done}
	onFailed := record("w3", paas.BackendNative, 1)
	onFailed.Seq, onFailed.State, onFailed.DependsOn = 4, paas.Blocked, []paas.TaskID{done, failed}
	onInput := record("w4", paas.BackendNative, 1)
	onInput.Seq, onInput.State, onInput.NextAttemptAt = 5, paas.Blocked, t0.Add(time.Hour)

	c.load([]paas.TaskRecord{onUnfinished, onDone, onFailed, onInput, running},
		map[paas.TaskID]paas.TaskState{done: paas.Completed, failed: paas.Cancelled})
	assert.Equal(t, []scheduler.Due{{ID: onInput.ID, At: t0.Add(time.Hour)}}, c.timers)
	c.commitAll()
	assert.Equal(t, paas.Blocked, c.state_(onUnfinished.ID))
	assert.Equal(t, paas.Pending, c.state_(onDone.ID))
	_, cached := c.status(onFailed.ID)
	assert.False(t, cached, "failed by its cancelled dependency")
	assert.Equal(t, paas.StatusSummary{Blocked: 2, Pending: 2, Failed: 1}, c.summary())
}

func TestCoreDeadlineStillAppliesWhileStopping(t *testing.T) {
	c := nativeHarness(t, 3)
	c.timeouts = map[paas.Backend]time.Duration{paas.BackendNative: time.Minute}
	c.submit(record("a", paas.BackendNative, 1))
	starts := c.run()
	deadline := c.timers[0]
	c.stop()
	c.due(deadline)
	assert.ErrorIs(t, context.Cause(starts[0].ctx), attempt.ErrTimedOut, "a graceful stop does not extend a deadline")
}
