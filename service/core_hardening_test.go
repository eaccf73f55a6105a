package service

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/store/memory"
)

// The edges of the contract, driven on the synchronous core.

// commitTo writes the core's queued writes through store, as the writer does, and commits the
// store's answers; it returns when nothing is left to write.
func (c *harness) commitTo(store paas.BatchStore) {
	for len(c.writes) > 0 {
		ws := c.writes
		c.writes = nil
		for i, r := range store.WriteBatch(c.t.Context(), ws) {
			c.commit(answer(&ws[i], &r))
		}
	}
}

func TestCoreRetryIsAnsweredOnlyOnceItsWriteIsStored(t *testing.T) {
	c := nativeHarness(t, 0)
	id := c.submit(record("a", paas.BackendNative, 1))
	c.run()
	c.finishRunning(id, paas.Permanent(errors.New("bad")))
	rec := record("a", paas.BackendNative, 1)
	rec.ID, rec.Seq, rec.State = id, 1, paas.Failed

	ack := make(chan error, 1)
	c.revive(rec, nil, ack)
	require.Len(t, c.writes, 1)
	assert.Empty(t, ack, "Retry must not return before its write is stored")
	_, held := c.status(id)
	assert.False(t, held, "nothing is visible before it is stored: the store answers Status")
	c.commitAll()
	require.NoError(t, <-ack)
	st, _ := c.status(id)
	assert.Equal(t, paas.Pending, st.State)
}

// A Retry decided on a record read before the task was retried and completed must not bring
// it back: the store holds a newer version, and the Retry reads the task again.
func TestCoreStaleRetryIsFencedAndNeverOverwritesACompletedTask(t *testing.T) {
	store := memory.New()
	c := nativeHarness(t, 0)
	reply := make(chan submitReply, 1)
	c.core.submit(record("a", paas.BackendNative, 1), nil, true, reply)
	c.commitTo(store)
	id := (<-reply).id
	c.dispatch()
	c.commitTo(store)
	c.takeStarts()
	c.handlerDone(id, paas.Permanent(errors.New("bad")))
	c.commitTo(store)

	stale, err := store.Get(t.Context(), id) // what both Retries read
	require.NoError(t, err)
	require.Equal(t, paas.Failed, stale.State)

	first := make(chan error, 1)
	c.revive(stale, nil, first)
	c.commitTo(store)
	require.NoError(t, <-first)
	c.dispatch()
	c.commitTo(store)
	c.takeStarts()
	c.handlerDone(id, nil)
	c.commitTo(store)
	_, cached := c.status(id)
	require.False(t, cached, "completed, and so forgotten by the core")

	second := make(chan error, 1)
	c.revive(stale, nil, second)
	// A Wait and a Cancel find the task held while the stale write is in flight.
	waiter, cancelAck := make(chan outcome, 1), make(chan error, 1)
	require.True(t, c.wait(id, waiter))
	require.True(t, c.cancel(id, cancelAck))
	c.commitTo(store)
	assert.ErrorIs(t, <-second, errReread, "a Retry decided on a stale record comes second")
	assert.ErrorIs(t, (<-waiter).err, errReread, "a waiter on the task that was not put back reads it again")
	assert.ErrorIs(t, <-cancelAck, errReread, "and so does a Cancel")
	got, err := store.Get(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, paas.Completed, got.State, "the completed task must not be overwritten")
	_, cached = c.status(id)
	assert.False(t, cached)
	assert.Equal(t, paas.StatusSummary{Completed: 1}, c.summary())
	assert.True(t, c.idle())
}

func TestCoreSecondOfTwoCancelsOfAWaitingTaskFindsItFinished(t *testing.T) {
	c := nativeHarness(t, 3)
	c.submit(record("busy", paas.BackendNative, 1))
	c.run()
	id := c.submit(record("a", paas.BackendNative, 1)) // queued behind busy
	first, second := make(chan error, 1), make(chan error, 1)
	require.True(t, c.cancel(id, first))
	require.True(t, c.cancel(id, second)) // while the first one's write is in flight
	c.commitAll()
	assert.NoError(t, <-first)
	assert.ErrorIs(t, <-second, paas.ErrTaskFinished, "the second Cancel comes after the task is Cancelled")
}

func TestCoreCancelDuringDispatchWriteGivesTheAttemptBack(t *testing.T) {
	c := nativeHarness(t, 3)
	id := c.submit(record("a", paas.BackendNative, 1))
	c.dispatch()
	ack := make(chan error, 1)
	c.cancel(id, ack)
	written := c.commitAll()
	require.NoError(t, <-ack)
	require.Len(t, written, 2)
	assert.Equal(t, paas.Cancelled, written[1].State)
	assert.Equal(t, 0, written[1].Attempts, "the handler never ran: no attempt was used")
	assert.Equal(t, 0, written[1].Runs)
}

func TestCoreMaxInputWaitGivesALastLookAtTheBound(t *testing.T) {
	c := nativeHarness(t, 3)
	c.maxInputWait = 10 * time.Minute
	id := c.submit(record("a", paas.BackendNative, 1))
	res := make(chan outcome, 1)
	c.wait(id, res)
	var looks []time.Duration
	for len(res) == 0 {
		require.Less(t, len(looks), 10, "the bound must end the waiting")
		c.run()
		looks = append(looks, c.clock.Now().Sub(t0))
		c.finishRunning(id, paas.NotReady(errors.New("not sealed"), 4*time.Minute))
		if len(c.timers) > 0 {
			due := c.timers[0]
			c.timers = nil
			c.clock.Advance(due.At.Sub(c.clock.Now()))
			c.due(due)
			c.commitAll()
		}
	}
	assert.Equal(t, []time.Duration{0, 4 * time.Minute, 8 * time.Minute, 10 * time.Minute}, looks,
		"looks every 4m, and the last one at the 10m bound")
	assert.Equal(t, paas.Failed, (<-res).res.State)
}

func TestCoreFinalRestartIsCounted(t *testing.T) {
	retry := noJitter(3)
	retry.MaxRestarts = 1
	c := newHarness(t, map[paas.Backend]int64{paas.BackendNative: 1}, retry)
	id := c.submit(record("a", paas.BackendNative, 1))
	starts := c.run()
	assert.Equal(t, 1, starts[0].task.Attempt)
	c.finishRunning(id, paas.Restart(errors.New("request lost")))
	due := c.timers[0]
	c.timers = nil
	c.clock.Advance(time.Second)
	c.due(due)
	c.commitAll()
	starts = c.run()
	assert.Equal(t, 2, starts[0].task.Attempt, "Attempt counts an attempt that failed with Restart")
	res := make(chan outcome, 1)
	c.wait(id, res)
	c.handlerDone(id, paas.Restart(errors.New("request lost again")))
	written := c.commitAll()
	require.Len(t, written, 1)
	assert.Equal(t, paas.Failed, written[0].State)
	assert.Equal(t, 2, written[0].Restarts, "both attempts that failed with Restart count")
	assert.Nil(t, written[0].Checkpoint)
	assert.Contains(t, written[0].LastError, "gave up after 2 restarts")
}

func TestCoreDependencyErrorCarriesTheDependencysState(t *testing.T) {
	c := nativeHarness(t, 3)
	dep := c.submit(record("dep", paas.BackendNative, 1))
	id := c.submitAfter(record("b", paas.BackendNative, 1), dep)
	res := make(chan outcome, 1)
	c.wait(id, res)
	ack := make(chan error, 1)
	c.cancel(dep, ack)
	c.commitAll()
	require.NoError(t, <-ack)
	r := (<-res).res
	assert.Equal(t, paas.Failed, r.State)
	var de *paas.DependencyError
	require.ErrorAs(t, r.Err(), &de)
	assert.Equal(t, dep, de.ID)
	assert.Equal(t, paas.Cancelled, de.State)
}

// Prune keeps the dependencies of unfinished tasks, so one missing at load was pruned while its
// dependent was being submitted, after Submit had found it Completed: it counts as Completed.
func TestCoreLoadCountsAPrunedDependencyAsCompleted(t *testing.T) {
	c := nativeHarness(t, 3)
	blocked := record("b", paas.BackendNative, 1)
	blocked.Seq, blocked.State = 2, paas.Blocked
	pruned := paas.NewTaskID()
	blocked.DependsOn = []paas.TaskID{pruned}
	c.load([]paas.TaskRecord{blocked}, map[paas.TaskID]paas.TaskState{pruned: 0})
	written := c.commitAll()
	require.Len(t, written, 1)
	assert.Equal(t, paas.Pending, written[0].State, "the task runs: its dependency had completed")
}

func TestCoreTimeoutZeroOptsOutOfTheBackendDefault(t *testing.T) {
	c := newHarness(t, map[paas.Backend]int64{paas.BackendNative: 2}, noJitter(3))
	c.timeouts = map[paas.Backend]time.Duration{paas.BackendNative: time.Minute}
	def := c.submit(record("default", paas.BackendNative, 1))
	none := record("none", paas.BackendNative, 1)
	none.NoTimeout = true
	c.submit(none)
	require.Len(t, c.run(), 2)
	assert.Equal(t, def, c.timers[0].ID, "the task without a timeout of its own has its backend's")
	assert.Len(t, c.timers, 1, "the task that opted out has no deadline")
}

func TestCoreSummaryCountsARetriedTaskOnce(t *testing.T) {
	c := nativeHarness(t, 0)
	id := c.submit(record("a", paas.BackendNative, 1))
	c.run()
	c.finishRunning(id, paas.Permanent(errors.New("bad")))
	require.Equal(t, paas.StatusSummary{Failed: 1}, c.summary())
	rec := record("a", paas.BackendNative, 1)
	rec.ID, rec.Seq, rec.State, rec.UpdatedAt = id, 1, paas.Failed, c.clock.Now()
	ack := make(chan error, 1)
	c.revive(rec, nil, ack)
	c.commitAll()
	require.NoError(t, <-ack)
	c.run()
	c.finishRunning(id, nil)
	assert.Equal(t, paas.StatusSummary{Completed: 1}, c.summary(), "one task, counted once, as it is now")
}
