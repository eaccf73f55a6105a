package service

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/clock"
	"github.com/zkpaas/paas/internal/attempt"
	"github.com/zkpaas/paas/internal/taskrec"
	"github.com/zkpaas/paas/scheduler"
)

// The core is driven directly here: no goroutines, no channels but buffered replies, no
// timing. A core keeps its own tiny "store" so that commits carry Seq like a real one.

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type harness struct {
	*core
	t     *testing.T
	clock *clock.Fake
	seq   uint64
}

func newHarness(t *testing.T, workers map[paas.Backend]int64, retry paas.RetryConfig) *harness {
	fake := clock.NewFake(t0)
	cfg := paas.Config{Workers: workers, Retry: &retry, Clock: fake}.WithDefaults()
	require.NoError(t, cfg.Validate())
	return &harness{core: newCore(cfg, nil), t: t, clock: fake}
}

// nativeHarness is the core most tests drive: one worker of the native backend, and a retry
// policy of maxRetries retries without jitter.
func nativeHarness(t *testing.T, maxRetries int) *harness {
	return newHarness(t, map[paas.Backend]int64{paas.BackendNative: 1}, noJitter(maxRetries))
}

func noJitter(maxRetries int) paas.RetryConfig {
	if maxRetries == 0 {
		maxRetries = paas.Disabled
	}
	return paas.RetryConfig{MaxRetries: maxRetries, BaseDelay: time.Second, Multiplier: 2, MaxDelay: time.Minute,
		Jitter: paas.Disabled, MaxRestarts: paas.Disabled}
}

func record(program string, backend paas.Backend, weight int64) paas.TaskRecord {
	rec := taskrec.New("test", []byte(program), backend, t0)
	rec.Weight = weight
	return rec
}

// submit submits rec and commits its insert; it returns the new task's id.
func (c *harness) submit(rec paas.TaskRecord) paas.TaskID {
	reply := make(chan submitReply, 1)
	c.core.submit(rec, nil, true, reply)
	c.commitAll()
	r := <-reply
	require.NoError(c.t, r.err)
	return r.id
}

// commitAll acknowledges every queued write as stored and returns the records written.
func (c *harness) commitAll() []paas.TaskRecord {
	var out []paas.TaskRecord
	for len(c.writes) > 0 {
		ws := c.writes
		c.writes = nil
		for _, w := range ws {
			res := written{Write: w}
			if w.Insert {
				c.seq++
				res.Record.Seq = c.seq
			}
			out = append(out, w.Record)
			c.commit(res)
		}
	}
	return out
}

// takeStarts returns the handlers the core asked to launch, by task id.
func (c *harness) takeStarts() []start {
	s := c.starts
	c.starts = nil
	return s
}

func (c *harness) state_(id paas.TaskID) paas.TaskState {
	st, ok := c.status(id)
	if !ok {
		return 0
	}
	return st.State
}

func TestCoreRunsTaskThroughToCompleted(t *testing.T) {
	c := nativeHarness(t, 3)
	id := c.submit(record("a", paas.BackendNative, 1))
	assert.Equal(t, paas.Pending, c.state_(id))
	assert.Equal(t, 1, c.summary().Pending)

	c.dispatch()
	assert.Empty(t, c.takeStarts(), "no handler may start before InProgress is stored")
	assert.Equal(t, paas.Pending, c.state_(id), "InProgress is not visible before it is stored")
	written := c.commitAll()
	require.Len(t, written, 1)
	assert.Equal(t, paas.InProgress, written[0].State)
	assert.Equal(t, 1, written[0].Attempts)

	starts := c.takeStarts()
	require.Len(t, starts, 1)
	assert.Equal(t, id, starts[0].task.ID)
	assert.Equal(t, 1, starts[0].task.Attempt)
	res := make(chan outcome, 1)
	require.True(t, c.wait(id, res))

	c.handlerDone(id, nil)
	assert.Empty(t, res, "the result is not told before it is stored")
	c.commitAll()
	r := <-res
	assert.Equal(t, outcome{res: paas.TaskResult{ID: id, State: paas.Completed, Attempts: 1}}, r)
	_, cached := c.status(id)
	assert.False(t, cached, "finished tasks leave the cache")
	assert.Equal(t, paas.StatusSummary{Completed: 1}, c.summary())
	assert.True(t, c.idle())
}

func TestCoreDuplicateSubmitsShareOneInsert(t *testing.T) {
	c := nativeHarness(t, 3)
	rec := record("a", paas.BackendNative, 1)
	r1, r2 := make(chan submitReply, 1), make(chan submitReply, 1)
	c.core.submit(rec, nil, true, r1)
	dup := rec
	dup.ID = paas.NewTaskID()
	c.core.submit(dup, nil, true, r2)
	require.Len(t, c.writes, 1, "one insert for two submits of the same key")
	c.commitAll()
	a, b := <-r1, <-r2
	assert.Equal(t, rec.ID, a.id)
	assert.Equal(t, rec.ID, b.id)

	// Once cached, a duplicate is answered without touching the store.
	r3 := make(chan submitReply, 1)
	c.core.submit(dup, nil, true, r3)
	assert.Empty(t, c.writes)
	assert.Equal(t, rec.ID, (<-r3).id)
}

func TestCoreInsertOfExistingKeyReturnsStoredTask(t *testing.T) {
	c := nativeHarness(t, 3)
	rec := record("a", paas.BackendNative, 1)
	reply := make(chan submitReply, 1)
	c.core.submit(rec, nil, true, reply)
	require.True(t, c.writes[0].Insert)
	c.writes = nil
	existing := rec
	existing.ID = paas.NewTaskID()
	existing.State = paas.Completed
	c.commit(written{Write: paas.Write{Insert: true, Record: existing}})
	assert.Equal(t, existing.ID, (<-reply).id)
	_, cached := c.status(existing.ID)
	assert.False(t, cached, "a finished task found by key is not run again")
	c.dispatch()
	assert.Empty(t, c.writes)
}

func TestCoreInsertErrorReachesEverySubmitter(t *testing.T) {
	c := nativeHarness(t, 3)
	rec := record("a", paas.BackendNative, 1)
	r1, r2 := make(chan submitReply, 1), make(chan submitReply, 1)
	c.core.submit(rec, nil, true, r1)
	c.core.submit(rec, nil, true, r2)
	boom := errors.New("disk full")
	w := c.writes[0]
	c.writes = nil
	c.commit(written{Write: w, err: boom})
	assert.ErrorIs(t, (<-r1).err, boom)
	assert.ErrorIs(t, (<-r2).err, boom)
	_, cached := c.status(rec.ID)
	assert.False(t, cached)
	assert.Equal(t, paas.StatusSummary{}, c.summary())
	assert.True(t, c.idle())
}

func TestCoreDispatchIsFIFOWithinBackendAndBoundedByWorkers(t *testing.T) {
	c := newHarness(t, map[paas.Backend]int64{paas.BackendSP1: 2, paas.BackendRisc0: 1}, noJitter(3))
	var sp1 []paas.TaskID
	for i := range 5 {
		sp1 = append(sp1, c.submit(record(fmt.Sprint("s", i), paas.BackendSP1, 1)))
	}
	r0 := c.submit(record("r", paas.BackendRisc0, 1))

	c.dispatch()
	c.commitAll()
	started := map[paas.TaskID]bool{}
	for _, s := range c.takeStarts() {
		started[s.task.ID] = true
	}
	assert.Equal(t, map[paas.TaskID]bool{sp1[0]: true, sp1[1]: true, r0: true}, started)

	// A finished task frees its slot for the next in submission order.
	c.handlerDone(sp1[1], nil)
	c.commitAll()
	c.dispatch()
	c.commitAll()
	starts := c.takeStarts()
	require.Len(t, starts, 1)
	assert.Equal(t, sp1[2], starts[0].task.ID)
}

func TestCoreHeavyTaskAtHeadIsNotStarvedByLightOnes(t *testing.T) {
	c := newHarness(t, map[paas.Backend]int64{paas.BackendSP1: 2}, noJitter(3))
	light1 := c.submit(record("l1", paas.BackendSP1, 1))
	heavy := c.submit(record("h", paas.BackendSP1, 2))
	light2 := c.submit(record("l2", paas.BackendSP1, 1))

	c.dispatch()
	c.commitAll()
	starts := c.takeStarts()
	require.Len(t, starts, 1, "the heavy task at the head holds back the light one behind it")
	assert.Equal(t, light1, starts[0].task.ID)

	c.handlerDone(light1, nil)
	c.commitAll()
	c.dispatch()
	c.commitAll()
	starts = c.takeStarts()
	require.Len(t, starts, 1)
	assert.Equal(t, heavy, starts[0].task.ID, "the heavy task gets both slots first")
	assert.Equal(t, paas.Pending, c.state_(light2))
}

func TestCoreTransientFailuresRetryWithBackoffUntilBudgetRunsOut(t *testing.T) {
	c := nativeHarness(t, 2)
	id := c.submit(record("a", paas.BackendNative, 1))
	boom := errors.New("prover busy")
	for attempt := 1; attempt <= 3; attempt++ {
		c.dispatch()
		c.commitAll()
		starts := c.takeStarts()
		require.Len(t, starts, 1)
		assert.Equal(t, attempt, starts[0].task.Attempt, "the attempt count survives every transition")
		c.handlerDone(id, boom)
		c.commitAll()
		if attempt == 3 {
			break
		}
		st, _ := c.status(id)
		assert.Equal(t, paas.Retrying, st.State)
		want := t0.Add(time.Second << (attempt - 1)) // 1s, then 2s
		assert.Equal(t, want, st.NextAttemptAt)
		assert.Equal(t, "prover busy", st.LastError)
		require.Equal(t, []scheduler.Due{{ID: id, At: want}}, c.timers)
		c.timers = nil
		c.due(scheduler.Due{ID: id, At: want})
		c.commitAll()
		assert.Equal(t, paas.Pending, c.state_(id))
	}
	assert.Equal(t, paas.StatusSummary{Failed: 1}, c.summary())
}

func TestCoreRetryAfterOverridesBackoff(t *testing.T) {
	c := nativeHarness(t, 2)
	id := c.submit(record("a", paas.BackendNative, 1))
	c.dispatch()
	c.commitAll()
	c.handlerDone(id, paas.RetryAfter(errors.New("rate limited"), time.Hour))
	c.commitAll()
	st, _ := c.status(id)
	assert.Equal(t, paas.Retrying, st.State)
	assert.Equal(t, t0.Add(time.Hour), st.NextAttemptAt)
}

func TestCoreStaleDueIsIgnored(t *testing.T) {
	c := nativeHarness(t, 2)
	id := c.submit(record("a", paas.BackendNative, 1))
	c.dispatch()
	c.commitAll()
	c.handlerDone(id, errors.New("x"))
	c.commitAll()
	c.due(scheduler.Due{ID: id, At: t0.Add(time.Minute)})
	assert.Empty(t, c.writes, "a due time that is not the task's own is stale")
	c.due(scheduler.Due{ID: paas.NewTaskID(), At: t0})
	assert.Empty(t, c.writes)
}

func TestCorePanicFailsTaskWithoutRetry(t *testing.T) {
	c := nativeHarness(t, 3)
	id := c.submit(record("a", paas.BackendNative, 1))
	res := make(chan outcome, 1)
	c.wait(id, res)
	c.dispatch()
	c.commitAll()
	c.handlerDone(id, &paas.PanicError{Value: "index out of range"})
	c.commitAll()
	assert.Equal(t, outcome{res: paas.TaskResult{ID: id, State: paas.Failed, Attempts: 1, Error: "handler panicked: index out of range"}}, <-res)
}

func TestCoreCancelWaitingTaskIsImmediate(t *testing.T) {
	c := nativeHarness(t, 3)
	running := c.submit(record("a", paas.BackendNative, 1))
	queued := c.submit(record("b", paas.BackendNative, 1))
	c.dispatch()
	c.commitAll()
	c.takeStarts()

	ack := make(chan error, 1)
	require.True(t, c.cancel(queued, ack))
	assert.Empty(t, ack, "answered only once Cancelled is stored")
	c.commitAll()
	assert.NoError(t, <-ack)
	assert.Equal(t, 1, c.summary().Cancelled)

	// The freed queue position is not dispatched when the slot frees.
	c.handlerDone(running, nil)
	c.commitAll()
	c.dispatch()
	assert.Empty(t, c.writes)
}

func TestCoreCancelRetryingTask(t *testing.T) {
	c := nativeHarness(t, 3)
	id := c.submit(record("a", paas.BackendNative, 1))
	c.dispatch()
	c.commitAll()
	c.handlerDone(id, errors.New("x"))
	c.commitAll()
	due := c.timers[0]
	ack := make(chan error, 1)
	c.cancel(id, ack)
	c.commitAll()
	require.NoError(t, <-ack)
	c.due(due)
	assert.Empty(t, c.writes, "a cancelled task is not retried")
}

func TestCoreCancelRunningTaskCancelsHandlerContext(t *testing.T) {
	c := nativeHarness(t, 3)
	id := c.submit(record("a", paas.BackendNative, 1))
	c.dispatch()
	c.commitAll()
	starts := c.takeStarts()
	ack := make(chan error, 1)
	c.cancel(id, ack)
	require.NoError(t, <-ack)
	ctx := starts[0].ctx
	require.ErrorIs(t, ctx.Err(), context.Canceled)
	assert.ErrorIs(t, context.Cause(ctx), attempt.ErrCancelled)
	assert.Equal(t, paas.InProgress, c.state_(id), "Cancelled once the handler returns")

	c.handlerDone(id, ctx.Err())
	c.commitAll()
	assert.Equal(t, paas.StatusSummary{Cancelled: 1}, c.summary())
}

func TestCoreCancelDuringDispatchWriteSkipsHandler(t *testing.T) {
	c := nativeHarness(t, 3)
	id := c.submit(record("a", paas.BackendNative, 1))
	next := c.submit(record("b", paas.BackendNative, 1))
	c.dispatch()
	require.Len(t, c.writes, 1) // InProgress, in flight
	ack := make(chan error, 1)
	c.cancel(id, ack)
	written := c.commitAll()
	require.NoError(t, <-ack)
	assert.Equal(t, []paas.TaskState{paas.InProgress, paas.Cancelled}, []paas.TaskState{written[0].State, written[1].State})
	assert.Empty(t, c.takeStarts(), "a task cancelled before its handler started never starts")

	c.dispatch()
	c.commitAll()
	starts := c.takeStarts()
	require.Len(t, starts, 1, "the worker slot was given back")
	assert.Equal(t, next, starts[0].task.ID)
}

func TestCoreCancelFinishingTaskSaysFinished(t *testing.T) {
	c := nativeHarness(t, 3)
	id := c.submit(record("a", paas.BackendNative, 1))
	c.dispatch()
	c.commitAll()
	c.handlerDone(id, nil) // Completed, in flight
	ack := make(chan error, 1)
	c.cancel(id, ack)
	c.commitAll()
	assert.ErrorIs(t, <-ack, paas.ErrTaskFinished)
	assert.False(t, c.cancel(id, ack), "finished tasks are no longer cached; the store answers")
}

func TestCoreStopInterruptsWithoutSpendingAnAttempt(t *testing.T) {
	c := newHarness(t, map[paas.Backend]int64{paas.BackendNative: 2}, noJitter(3))
	running := c.submit(record("a", paas.BackendNative, 1))
	c.dispatch()
	c.commitAll()
	starts := c.takeStarts()
	starting := c.submit(record("b", paas.BackendNative, 1))
	queued := c.submit(record("c", paas.BackendNative, 1))
	c.dispatch() // b's InProgress write is in flight when the stop comes
	require.Len(t, c.writes, 1)

	c.stop()
	c.dispatch()
	written := c.commitAll()
	require.Len(t, written, 2)
	assert.Equal(t, paas.InProgress, written[0].State)
	assert.Equal(t, paas.Pending, written[1].State, "a task not yet started goes back to Pending")
	assert.Equal(t, 0, written[1].Attempts, "without using an attempt")
	assert.Empty(t, c.takeStarts())
	assert.Equal(t, paas.Pending, c.state_(starting))
	assert.Equal(t, paas.Pending, c.state_(queued))
	assert.False(t, c.idle(), "a handler still runs")

	reply := make(chan submitReply, 1)
	c.core.submit(record("d", paas.BackendNative, 1), nil, true, reply)
	assert.ErrorIs(t, (<-reply).err, paas.ErrStopped)

	c.interrupt()
	assert.ErrorIs(t, context.Cause(starts[0].ctx), attempt.ErrInterrupted)
	c.handlerDone(running, starts[0].ctx.Err())
	written = c.commitAll()
	require.Len(t, written, 1)
	assert.Equal(t, paas.Pending, written[0].State)
	assert.Equal(t, 0, written[0].Attempts)
	assert.True(t, c.idle())
}

func TestCoreLoadResumesUnfinishedTasks(t *testing.T) {
	c := nativeHarness(t, 1)
	pending := record("p", paas.BackendNative, 1)
	pending.Seq = 1
	retrying := record("r", paas.BackendNative, 1)
	retrying.Seq, retrying.State, retrying.Attempts = 2, paas.Retrying, 1
	retrying.NextAttemptAt = t0.Add(time.Hour)
	crashed := record("c", paas.BackendNative, 1)
	crashed.Seq, crashed.State, crashed.Attempts = 3, paas.InProgress, 2 // its retry budget is spent
	crashedOften := record("c2", paas.BackendNative, 1)
	crashedOften.Seq, crashedOften.State, crashedOften.Attempts = 4, paas.InProgress, 1
	crashedOften.Interruptions = paas.DefaultMaxInterruptions

	c.load([]paas.TaskRecord{pending, retrying, crashed, crashedOften}, nil)
	assert.Equal(t, []scheduler.Due{{ID: retrying.ID, At: retrying.NextAttemptAt}}, c.timers, "a restart does not reset backoff")
	written := c.commitAll()
	require.Len(t, written, 2)
	assert.Equal(t, paas.Pending, written[0].State, "an interrupted attempt runs again, whatever its retry budget")
	assert.Equal(t, 1, written[0].Attempts, "an interrupted attempt spends no retry")
	assert.Equal(t, 1, written[0].Interruptions, "it counts against MaxInterruptions")
	assert.Equal(t, attempt.ErrCrashed.Error(), written[0].LastError)
	assert.Equal(t, paas.Failed, written[1].State, "a task that keeps crashing the process runs out of budget")
	assert.Equal(t, paas.DefaultMaxInterruptions+1, written[1].Interruptions)
	assert.Equal(t, paas.StatusSummary{Pending: 2, Retrying: 1, Failed: 1}, c.summary())

	c.dispatch()
	c.commitAll()
	starts := c.takeStarts()
	require.Len(t, starts, 1)
	assert.Equal(t, pending.ID, starts[0].task.ID)
}

func TestCoreLoadLeavesTasksItCannotRunInTheStore(t *testing.T) {
	fake := clock.NewFake(t0)
	cfg := paas.Config{Workers: map[paas.Backend]int64{paas.BackendNative: 1}, Clock: fake}.WithDefaults()
	c := newCore(cfg, func(r paas.TaskRecord) error {
		if r.Backend != paas.BackendNative {
			return paas.ErrUnknownBackend
		}
		return nil
	})
	c.load([]paas.TaskRecord{record("x", paas.BackendSP1, 1)}, nil)
	assert.Equal(t, paas.StatusSummary{}, c.summary())
	assert.Empty(t, c.writes)
}

func TestCoreUnwaitForgetsWaiter(t *testing.T) {
	c := nativeHarness(t, 3)
	id := c.submit(record("a", paas.BackendNative, 1))
	res := make(chan outcome, 1)
	c.wait(id, res)
	c.unwait(id, res)
	c.dispatch()
	c.commitAll()
	c.handlerDone(id, nil)
	c.commitAll()
	assert.Empty(t, res)
}

func TestCoreWriteGivenUpTellsWaitersAndFreesTheSlot(t *testing.T) {
	c := nativeHarness(t, 3)
	id := c.submit(record("a", paas.BackendNative, 1))
	next := c.submit(record("b", paas.BackendNative, 1))
	res := make(chan outcome, 1)
	c.wait(id, res)
	c.dispatch()
	w := c.writes[0]
	c.writes = nil
	c.commit(written{Write: w, err: paas.ErrStoreClosed})

	o := <-res
	assert.ErrorIs(t, o.err, paas.ErrStoreClosed)
	_, cached := c.status(id)
	assert.False(t, cached, "the task is left to the store, which still holds it Pending")
	assert.Equal(t, paas.StatusSummary{Pending: 1}, c.summary())
	c.dispatch()
	require.Len(t, c.writes, 1, "the worker slot was given back")
	assert.Equal(t, next, c.writes[0].Record.ID)
}
