package service_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/service"
	"github.com/zkpaas/paas/store/memory"
)

func TestExecuteReturnsCompletedResult(t *testing.T) {
	f := start(t, nil)
	done := make(chan paas.TaskResult)
	go func() {
		res, err := f.h.Execute(f.ctx, job{Name: "a"}, paas.BackendNative)
		assert.NoError(t, err)
		done <- res
	}()
	a := f.gate.next(t)
	assert.Equal(t, 1, a.task.Attempt)
	assert.JSONEq(t, `{"Name":"a"}`, string(a.task.Program))
	a.answer <- nil
	res := <-done
	assert.Equal(t, paas.Completed, res.State)
	assert.Equal(t, 1, res.Attempts)
	assert.NoError(t, res.Err())
	stored, err := f.store.Get(f.ctx, res.ID)
	require.NoError(t, err)
	assert.Equal(t, paas.Completed, stored.State, "the final state is in the store")
}

func TestDuplicateSubmitReturnsSameTaskAndProvesOnce(t *testing.T) {
	f := start(t, nil)
	id := f.submit("a")
	assert.Equal(t, id, f.submit("a"), "while pending")
	a := f.gate.next(t)
	assert.Equal(t, id, f.submit("a"), "while in progress")
	a.answer <- nil
	f.wait(id)
	assert.Equal(t, id, f.submit("a"), "once completed")
	other, err := f.h.Submit(f.ctx, job{Name: "a"}, paas.BackendSP1)
	assert.ErrorIs(t, err, paas.ErrUnknownBackend)
	assert.True(t, other.IsZero())
	assert.Equal(t, 1, f.store.Len())
	assert.Equal(t, paas.StatusSummary{Completed: 1}, f.summary(), "the duplicates started nothing")
}

func TestConcurrentDuplicateSubmitsYieldOneTask(t *testing.T) {
	f := start(t, nil)
	const n = 64
	ids := make([]paas.TaskID, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id, err := f.h.Submit(f.ctx, job{Name: "same"}, paas.BackendNative)
			assert.NoError(t, err)
			ids[i] = id
		})
	}
	wg.Wait()
	for _, id := range ids {
		assert.Equal(t, ids[0], id)
	}
	assert.Equal(t, 1, f.store.Len())
	f.gate.next(t).answer <- nil
	assert.Equal(t, paas.Completed, f.wait(ids[0]).State)
}

// nameOnly encodes a job by its name alone, so that jobs differing only in weight are one task.
type nameOnly struct{}

func (nameOnly) Marshal(v any) ([]byte, error)      { return []byte(v.(job).Name), nil }
func (nameOnly) Unmarshal(data []byte, v any) error { v.(*job).Name = string(data); return nil }

func TestCustomCodecIdentifiesTasks(t *testing.T) {
	f := start(t, nil, func(c *paas.Config) { c.Codec = nameOnly{} }, workers(map[paas.Backend]int64{paas.BackendNative: 2}))
	a, err := f.h.Submit(f.ctx, job{Name: "x", W: 1}, paas.BackendNative)
	require.NoError(t, err)
	b, err := f.h.Submit(f.ctx, job{Name: "x", W: 2}, paas.BackendNative)
	require.NoError(t, err)
	assert.Equal(t, a, b, "equal encodings are one task")
	at := f.gate.next(t)
	assert.Equal(t, "x", string(at.task.Program), "the handler gets the custom encoding")
	at.answer <- nil
	f.wait(a)
}

type unencodable struct{ C chan int }

func (unencodable) RoutingKey() paas.RoutingKey { return "job" }

type orphan struct{}

func (orphan) RoutingKey() paas.RoutingKey { return "nobody" }

type weightless struct{}

func (weightless) RoutingKey() paas.RoutingKey { return "job" }
func (weightless) Weight() int64               { return 0 }

func TestBadSubmitIsRefusedWithTypedErrorAndStoresNothing(t *testing.T) {
	f := start(t, nil, workers(map[paas.Backend]int64{paas.BackendNative: 2}))
	cases := []struct {
		name    string
		program paas.ProgramType
		backend paas.Backend
		want    error
	}{
		{"backend without workers", job{Name: "a"}, paas.BackendRisc0, paas.ErrUnknownBackend},
		{"routing key without handler", orphan{}, paas.BackendNative, paas.ErrNoHandler},
		{"unencodable program", unencodable{C: make(chan int)}, paas.BackendNative, paas.ErrEncodeProgram},
		{"nil program", nil, paas.BackendNative, paas.ErrEncodeProgram},
		{"weight above capacity", job{Name: "a", W: 3}, paas.BackendNative, paas.ErrInvalidWeight},
		{"weight below one", weightless{}, paas.BackendNative, paas.ErrInvalidWeight},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := f.h.Submit(f.ctx, tc.program, tc.backend)
			assert.ErrorIs(t, err, tc.want)
			assert.True(t, id.IsZero())
		})
	}
	assert.Equal(t, 0, f.store.Len())
	// The service keeps running.
	id := f.submit("fine")
	f.gate.next(t).answer <- nil
	assert.Equal(t, paas.Completed, f.wait(id).State)
}

func TestWorkersBoundConcurrentWeightPerBackend(t *testing.T) {
	f := start(t, nil, workers(map[paas.Backend]int64{paas.BackendNative: 3}))
	var ids []paas.TaskID
	for i := range 3 {
		ids = append(ids, f.submit(fmt.Sprint(i)))
	}
	heavy, err := f.h.Submit(f.ctx, job{Name: "heavy", W: 2}, paas.BackendNative)
	require.NoError(t, err)
	light := f.submit("light")
	running := []attempt{f.gate.next(t), f.gate.next(t), f.gate.next(t)}
	assert.Equal(t, paas.StatusSummary{InProgress: 3, Pending: 2}, f.summary())

	running[0].answer <- nil
	f.wait(ids[0])
	assert.Equal(t, paas.StatusSummary{InProgress: 2, Pending: 2, Completed: 1}, f.summary(),
		"one free slot is not enough for the heavy task at the head, and the light one waits behind it")
	running[1].answer <- nil
	h := f.gate.next(t)
	assert.Equal(t, heavy, h.task.ID)
	assert.Equal(t, paas.StatusSummary{InProgress: 2, Pending: 1, Completed: 2}, f.summary())
	running[2].answer <- nil
	h.answer <- nil
	l := f.gate.next(t)
	assert.Equal(t, light, l.task.ID)
	l.answer <- nil
	f.wait(light)
}

func TestDispatchIsFIFOWithinBackend(t *testing.T) {
	f := start(t, nil)
	var ids []paas.TaskID
	for i := range 10 {
		ids = append(ids, f.submit(fmt.Sprint(i)))
	}
	for _, want := range ids {
		a := f.gate.next(t)
		assert.Equal(t, want, a.task.ID)
		a.answer <- nil
	}
}

func TestQueuedTasksCostNoGoroutines(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	f := start(t, nil)
	first := f.submit("first")
	blocked := f.gate.next(t) // the only worker is busy from here on
	before := runtime.NumGoroutine()
	var wg sync.WaitGroup
	const submitters = 8
	for s := range submitters {
		wg.Go(func() {
			for i := s; i < n; i += submitters {
				_, err := f.h.Submit(f.ctx, job{Name: fmt.Sprint(i)}, paas.BackendNative)
				if err != nil {
					assert.NoError(t, err)
					return
				}
			}
		})
	}
	wg.Wait()
	after := runtime.NumGoroutine()
	assert.Equal(t, paas.StatusSummary{InProgress: 1, Pending: n}, f.summary())
	assert.LessOrEqual(t, after-before, 2, "%d queued tasks must not hold goroutines (before %d, after %d)", n, before, after)
	blocked.answer <- nil
	f.wait(first)
}

func TestTransientFailureRetriesWithBackoffOnTheClock(t *testing.T) {
	f := start(t, nil)
	id := f.submit("a")
	f.gate.next(t).answer <- errors.New("prover busy")

	require.NoError(t, f.clock.WaitForTimers(f.ctx, 1)) // the retry is scheduled
	st := f.status(id)
	assert.Equal(t, paas.Retrying, st.State)
	assert.Equal(t, 1, st.Attempts)
	assert.Equal(t, "prover busy", st.LastError)
	assert.Equal(t, t0.Add(time.Second), st.NextAttemptAt)
	assert.Equal(t, 1, f.summary().Retrying)

	f.clock.Advance(time.Second - time.Nanosecond)
	assert.Equal(t, paas.Retrying, f.status(id).State, "not before the due time")
	f.clock.Advance(time.Nanosecond)
	a := f.gate.next(t)
	assert.Equal(t, 2, a.task.Attempt)
	a.answer <- errors.New("prover busy again")

	require.NoError(t, f.clock.WaitForTimers(f.ctx, 1))
	assert.Equal(t, t0.Add(time.Second+2*time.Second), f.status(id).NextAttemptAt, "the delay doubles")
	f.clock.Advance(2 * time.Second)
	a = f.gate.next(t)
	assert.Equal(t, 3, a.task.Attempt)
	a.answer <- nil
	res := f.wait(id)
	assert.Equal(t, paas.TaskResult{ID: id, State: paas.Completed, Attempts: 3}, res)
}

func TestRetryBudgetRunsOutThenFailed(t *testing.T) {
	f := start(t, nil, retry(paas.RetryConfig{MaxRetries: 1, BaseDelay: time.Second, Jitter: paas.Disabled}))
	id := f.submit("a")
	f.gate.next(t).answer <- errors.New("one")
	require.NoError(t, f.clock.WaitForTimers(f.ctx, 1))
	f.clock.Advance(time.Second)
	f.gate.next(t).answer <- errors.New("two")
	res := f.wait(id)
	assert.Equal(t, paas.Failed, res.State)
	assert.Equal(t, 2, res.Attempts)
	assert.Equal(t, "two (gave up after 2 attempts)", res.Error)
	var taskErr *paas.TaskError
	require.ErrorAs(t, res.Err(), &taskErr)
	assert.Equal(t, id, taskErr.ID)
	assert.Equal(t, paas.Failed, taskErr.State)
}

func TestRetryAfterChoosesTheDelay(t *testing.T) {
	f := start(t, nil)
	id := f.submit("a")
	f.gate.next(t).answer <- paas.RetryAfter(errors.New("queue full"), 10*time.Minute)
	require.NoError(t, f.clock.WaitForTimers(f.ctx, 1))
	assert.Equal(t, t0.Add(10*time.Minute), f.status(id).NextAttemptAt)
}

func TestPermanentErrorFailsWithoutRetry(t *testing.T) {
	f := start(t, nil)
	id := f.submit("a")
	f.gate.next(t).answer <- paas.Permanent(errors.New("bad input"))
	res := f.wait(id)
	assert.Equal(t, paas.Failed, res.State)
	assert.Equal(t, 1, res.Attempts)
	assert.Equal(t, "permanent: bad input", res.Error)
}

func TestHandlerPanicFailsTaskAndServiceGoesOn(t *testing.T) {
	store := memory.New()
	svc, err := service.New(paas.Config{Workers: map[paas.Backend]int64{paas.BackendNative: 1}}, store,
		map[paas.RoutingKey]handler.ProofHandler{"job": handler.ProofHandlerFunc(func(ctx context.Context, task paas.Task) error {
			if string(task.Program) == `{"Name":"bad"}` {
				panic("unsupported opcode")
			}
			return nil
		})})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, svc.Start(ctx))
	defer svc.Stop(ctx)
	res, err := svc.Handle().Execute(ctx, job{Name: "bad"}, paas.BackendNative)
	require.NoError(t, err)
	assert.Equal(t, paas.Failed, res.State)
	assert.Equal(t, 1, res.Attempts)
	assert.Contains(t, res.Error, "handler panicked: unsupported opcode")
	res, err = svc.Handle().Execute(ctx, job{Name: "good"}, paas.BackendNative)
	require.NoError(t, err)
	assert.Equal(t, paas.Completed, res.State)
}

func TestCancelPendingTaskIsImmediate(t *testing.T) {
	f := start(t, nil)
	first := f.submit("first")
	running := f.gate.next(t)
	queued := f.submit("queued")
	require.NoError(t, f.h.Cancel(f.ctx, queued))
	assert.Equal(t, paas.Cancelled, f.status(queued).State)
	assert.Equal(t, paas.TaskResult{ID: queued, State: paas.Cancelled}, f.wait(queued))
	running.answer <- nil
	f.wait(first)
	assert.Equal(t, paas.StatusSummary{Completed: 1, Cancelled: 1}, f.summary(), "the cancelled task never ran")
}

func TestCancelRetryingTask(t *testing.T) {
	f := start(t, nil)
	id := f.submit("a")
	f.gate.next(t).answer <- errors.New("x")
	require.NoError(t, f.clock.WaitForTimers(f.ctx, 1))
	require.NoError(t, f.h.Cancel(f.ctx, id))
	assert.Equal(t, paas.Cancelled, f.status(id).State)
	f.clock.Advance(time.Hour)
	next := f.submit("b")
	a := f.gate.next(t)
	assert.Equal(t, next, a.task.ID, "the cancelled task did not run again")
	a.answer <- nil
	f.wait(next)
}

func TestCancelRunningTaskCancelsHandlerContext(t *testing.T) {
	f := start(t, nil)
	id := f.submit("a")
	a := f.gate.next(t)
	require.NoError(t, f.h.Cancel(f.ctx, id))
	<-a.ctx.Done() // the gate returns ctx.Err()
	res := f.wait(id)
	assert.Equal(t, paas.Cancelled, res.State)
	assert.Equal(t, 1, res.Attempts)
}

func TestCancelFinishedOrUnknownTaskSaysSo(t *testing.T) {
	f := start(t, nil)
	id := f.submit("a")
	f.gate.next(t).answer <- nil
	f.wait(id)
	assert.ErrorIs(t, f.h.Cancel(f.ctx, id), paas.ErrTaskFinished)
	assert.Equal(t, paas.Completed, f.status(id).State, "nothing changed")
	assert.ErrorIs(t, f.h.Cancel(f.ctx, paas.NewTaskID()), paas.ErrTaskNotFound)
}

func TestStatusAndWaitOfUnknownTask(t *testing.T) {
	f := start(t, nil)
	_, err := f.h.Status(f.ctx, paas.NewTaskID())
	assert.ErrorIs(t, err, paas.ErrTaskNotFound)
	_, err = f.h.Wait(f.ctx, paas.NewTaskID())
	assert.ErrorIs(t, err, paas.ErrTaskNotFound)
}

func TestWaitReturnsWhenContextEndsAndTaskGoesOn(t *testing.T) {
	f := start(t, nil)
	id := f.submit("a")
	a := f.gate.next(t)
	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	_, err := f.h.Wait(ctx, id)
	assert.ErrorIs(t, err, context.Canceled)
	_, err = f.h.Execute(ctx, job{Name: "a"}, paas.BackendNative)
	assert.ErrorIs(t, err, context.Canceled)
	a.answer <- nil
	assert.Equal(t, paas.Completed, f.wait(id).State)
}

func TestManyWaitersAreAllNotified(t *testing.T) {
	// In a bubble, synctest.Wait returns once every goroutine is blocked: each waiter is then
	// registered with the loop and waiting for the outcome, before there is one.
	synctest.Test(t, func(t *testing.T) {
		f := start(t, nil)
		id := f.submit("a")
		a := f.gate.next(t)
		const n = 50
		results := make(chan paas.TaskResult, n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				res, err := f.h.Wait(f.ctx, id)
				assert.NoError(t, err)
				results <- res
			})
		}
		synctest.Wait()
		require.Equal(t, n, service.Waiters(f.h, id), "every waiter is registered before the outcome")
		require.Empty(t, results)
		a.answer <- nil
		wg.Wait()
		close(results)
		count := 0
		for r := range results {
			assert.Equal(t, paas.Completed, r.State)
			count++
		}
		assert.Equal(t, n, count)
	})
}
