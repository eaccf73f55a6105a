package service_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/clock"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/service"
	"github.com/zkpaas/paas/store/memory"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		os.Exit(crashChild(path)) // this process is a child of TestCrashRecoveryLosesNothing
	}
	goleak.VerifyTestMain(m)
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// job is the program of these tests.
type job struct {
	Name string
	W    int64 `json:",omitempty"`
}

func (job) RoutingKey() paas.RoutingKey { return "job" }
func (j job) Weight() int64 {
	if j.W == 0 {
		return 1
	}
	return j.W
}

// gate is a handler whose attempts block until the test answers them.
type gate struct {
	started chan attempt
}

type attempt struct {
	task   paas.Task
	ctx    context.Context
	answer chan error
}

func newGate() *gate { return &gate{started: make(chan attempt)} }

func (g *gate) Prove(ctx context.Context, task paas.Task) error {
	a := attempt{task: task, ctx: ctx, answer: make(chan error)}
	select {
	case g.started <- a:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-a.answer:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// next waits for the next attempt to start.
func (g *gate) next(t *testing.T) attempt {
	t.Helper()
	select {
	case a := <-g.started:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no attempt started")
		return attempt{}
	}
}

type fixture struct {
	t      *testing.T
	svc    *service.ProverService
	h      service.ProverHandle
	store  *memory.Store
	clock  *clock.Fake
	gate   *gate
	logs   *observer.ObservedLogs
	ctx    context.Context
	cancel context.CancelFunc
}

type option func(*paas.Config)

func retry(r paas.RetryConfig) option { return func(c *paas.Config) { c.Retry = &r } }
func workers(w map[paas.Backend]int64) option {
	return func(c *paas.Config) { c.Workers = w }
}

// start runs a service on store (a new one if nil) with the gate as handler for "job".
func start(t *testing.T, store *memory.Store, opts ...option) *fixture {
	t.Helper()
	if store == nil {
		store = memory.New()
	}
	f := startOn(t, store, opts...)
	f.store = store
	return f
}

// startOn runs a service on any store.
func startOn(t *testing.T, store paas.TaskStore, opts ...option) *fixture {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	f := &fixture{t: t, clock: clock.NewFake(t0), gate: newGate(), logs: logs}
	cfg := paas.Config{
		Workers: map[paas.Backend]int64{paas.BackendNative: 1},
		Retry:   &paas.RetryConfig{MaxRetries: 2, BaseDelay: time.Second, Multiplier: 2, MaxDelay: time.Minute},
		Clock:   f.clock,
		Logger:  zap.New(core),
	}
	for _, o := range opts {
		o(&cfg)
	}
	svc, err := service.New(cfg, store, map[paas.RoutingKey]handler.ProofHandler{"job": f.gate})
	require.NoError(t, err)
	f.ctx, f.cancel = context.WithTimeout(context.Background(), 30*time.Second)
	require.NoError(t, svc.Start(f.ctx))
	f.svc, f.h = svc, svc.Handle()
	t.Cleanup(func() {
		stopCtx, cancel := context.WithCancel(context.Background())
		cancel() // interrupt whatever still runs
		_ = svc.Stop(stopCtx)
		f.cancel()
	})
	return f
}

func (f *fixture) submit(name string) paas.TaskID {
	f.t.Helper()
	id, err := f.h.Submit(f.ctx, job{Name: name}, paas.BackendNative)
	require.NoError(f.t, err)
	return id
}

func (f *fixture) status(id paas.TaskID) paas.TaskStatus {
	f.t.Helper()
	st, err := f.h.Status(f.ctx, id)
	require.NoError(f.t, err)
	return st
}

func (f *fixture) wait(id paas.TaskID) paas.TaskResult {
	f.t.Helper()
	res, err := f.h.Wait(f.ctx, id)
	require.NoError(f.t, err)
	return res
}

func (f *fixture) summary() paas.StatusSummary {
	f.t.Helper()
	s, err := f.h.Summary(f.ctx)
	require.NoError(f.t, err)
	return s
}

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
	f := start(t, nil, retry(paas.RetryConfig{MaxRetries: 1, BaseDelay: time.Second}))
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
	f := start(t, nil)
	id := f.submit("a")
	a := f.gate.next(t)
	const n = 50
	results := make(chan paas.TaskResult, n)
	var wg sync.WaitGroup
	var registered atomic.Int32
	for range n {
		wg.Go(func() {
			registered.Add(1)
			res, err := f.h.Wait(f.ctx, id)
			assert.NoError(t, err)
			results <- res
		})
	}
	a.answer <- nil
	wg.Wait()
	close(results)
	count := 0
	for r := range results {
		assert.Equal(t, paas.Completed, r.State)
		count++
	}
	assert.Equal(t, n, count)
}

func TestNewRefusesInvalidConfig(t *testing.T) {
	h := map[paas.RoutingKey]handler.ProofHandler{"job": newGate()}
	w := map[paas.Backend]int64{paas.BackendNative: 1}
	cases := []struct {
		name     string
		cfg      paas.Config
		store    paas.TaskStore
		handlers map[paas.RoutingKey]handler.ProofHandler
	}{
		{"no workers", paas.Config{}, memory.New(), h},
		{"zero workers", paas.Config{Workers: map[paas.Backend]int64{paas.BackendSP1: 0}}, memory.New(), h},
		{"empty backend", paas.Config{Workers: map[paas.Backend]int64{"": 1}}, memory.New(), h},
		{"negative retries", paas.Config{Workers: w, Retry: &paas.RetryConfig{MaxRetries: -1}}, memory.New(), h},
		{"negative base delay", paas.Config{Workers: w, Retry: &paas.RetryConfig{BaseDelay: -time.Second}}, memory.New(), h},
		{"NaN multiplier", paas.Config{Workers: w, Retry: &paas.RetryConfig{Multiplier: nan()}}, memory.New(), h},
		{"multiplier below one", paas.Config{Workers: w, Retry: &paas.RetryConfig{Multiplier: 0.5}}, memory.New(), h},
		{"max below base", paas.Config{Workers: w, Retry: &paas.RetryConfig{BaseDelay: time.Minute, MaxDelay: time.Second}}, memory.New(), h},
		{"jitter above one", paas.Config{Workers: w, Retry: &paas.RetryConfig{Jitter: 1.5}}, memory.New(), h},
		{"NaN jitter", paas.Config{Workers: w, Retry: &paas.RetryConfig{Jitter: nan()}}, memory.New(), h},
		{"nil store", paas.Config{Workers: w}, nil, h},
		{"no handlers", paas.Config{Workers: w}, memory.New(), nil},
		{"nil handler", paas.Config{Workers: w}, memory.New(), map[paas.RoutingKey]handler.ProofHandler{"job": nil}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svc, err := service.New(tc.cfg, tc.store, tc.handlers)
			assert.ErrorIs(t, err, paas.ErrInvalidConfig)
			assert.Nil(t, svc)
		})
	}
}

func nan() float64 { var zero float64; return zero / zero }

func TestLifecycleErrors(t *testing.T) {
	svc, err := service.New(paas.Config{Workers: map[paas.Backend]int64{paas.BackendNative: 1}}, memory.New(),
		map[paas.RoutingKey]handler.ProofHandler{"job": newGate()})
	require.NoError(t, err)
	ctx := context.Background()
	_, err = svc.Handle().Submit(ctx, job{Name: "a"}, paas.BackendNative)
	assert.ErrorIs(t, err, paas.ErrNotStarted)

	require.NoError(t, svc.Start(ctx))
	assert.ErrorIs(t, svc.Start(ctx), paas.ErrAlreadyStarted)
	require.NoError(t, svc.Stop(ctx))
	require.NoError(t, svc.Stop(ctx), "Stop is idempotent")
	<-svc.Stopped()
	_, err = svc.Handle().Submit(ctx, job{Name: "a"}, paas.BackendNative)
	assert.ErrorIs(t, err, paas.ErrStopped)
	_, err = svc.Handle().Summary(ctx)
	assert.ErrorIs(t, err, paas.ErrStopped)
	assert.ErrorIs(t, svc.Start(ctx), paas.ErrStopped)
}

func TestStopBeforeStartPreventsStart(t *testing.T) {
	svc, err := service.New(paas.Config{Workers: map[paas.Backend]int64{paas.BackendNative: 1}}, memory.New(),
		map[paas.RoutingKey]handler.ProofHandler{"job": newGate()})
	require.NoError(t, err)
	require.NoError(t, svc.Stop(context.Background()))
	assert.ErrorIs(t, svc.Start(context.Background()), paas.ErrStopped)
}

func TestStartFailsWhenStoreCannotLoadAndMayBeRetried(t *testing.T) {
	boom := errors.New("store offline")
	store := &failingLoad{Store: memory.New(), err: boom}
	store.failures.Store(1)
	svc, err := service.New(paas.Config{Workers: map[paas.Backend]int64{paas.BackendNative: 1}}, store,
		map[paas.RoutingKey]handler.ProofHandler{"job": newGate()})
	require.NoError(t, err)
	ctx := context.Background()
	assert.ErrorIs(t, svc.Start(ctx), boom)
	_, err = svc.Handle().Summary(ctx)
	assert.ErrorIs(t, err, paas.ErrNotStarted)
	require.NoError(t, svc.Start(ctx), "a failed start leaves nothing behind")
	_, err = svc.Handle().Summary(ctx)
	assert.NoError(t, err)
	require.NoError(t, svc.Stop(ctx))
}

type failingLoad struct {
	*memory.Store
	err      error
	failures atomic.Int32
}

func (f *failingLoad) Unfinished(ctx context.Context) ([]paas.TaskRecord, error) {
	if f.failures.Add(-1) >= 0 {
		return nil, f.err
	}
	return f.Store.Unfinished(ctx)
}

func TestStopLetsRunningHandlersFinish(t *testing.T) {
	f := start(t, nil)
	id := f.submit("a")
	a := f.gate.next(t)
	queued := f.submit("b")
	stopped := make(chan error)
	go func() { stopped <- f.svc.Stop(f.ctx) }()
	<-service.Stopping(f.svc)
	// Intake stops at once, while the handler still runs.
	_, err := f.h.Submit(f.ctx, job{Name: "c"}, paas.BackendNative)
	assert.ErrorIs(t, err, paas.ErrStopped)
	assert.NoError(t, a.ctx.Err(), "the running handler is left to finish")
	a.answer <- nil
	require.NoError(t, <-stopped)
	rec, err := f.store.Get(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, paas.Completed, rec.State)
	rec, err = f.store.Get(context.Background(), queued)
	require.NoError(t, err)
	assert.Equal(t, paas.Pending, rec.State, "queued tasks stay for the next start")
}

func TestStopCancelsHandlersWhenContextEndsAndRequeuesThem(t *testing.T) {
	f := start(t, nil)
	id := f.submit("a")
	a := f.gate.next(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, f.svc.Stop(ctx), context.Canceled)
	assert.Error(t, a.ctx.Err(), "the handler's context was cancelled")
	rec, err := f.store.Get(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, paas.Pending, rec.State, "an interrupted task goes back to Pending")
	assert.Equal(t, 0, rec.Attempts, "without using an attempt")
	assert.Equal(t, 1, rec.Runs, "the attempt ran, though")

	// The next start runs it with its budget whole; Attempt counts every attempt.
	g := start(t, f.store)
	b := g.gate.next(t)
	assert.Equal(t, id, b.task.ID)
	assert.Equal(t, 2, b.task.Attempt)
	b.answer <- nil
	g.wait(id)
}

func TestRestartResumesUnfinishedTasks(t *testing.T) {
	store := memory.New()
	ctx := context.Background()
	put := func(name string, state paas.TaskState, attempts int, next time.Time) paas.TaskID {
		p := []byte(fmt.Sprintf(`{"Name":%q}`, name))
		rec, err := store.Insert(ctx, paas.TaskRecord{
			ID: paas.NewTaskID(), Key: paas.KeyOf("job", p, paas.BackendNative), RoutingKey: "job",
			Backend: paas.BackendNative, Program: p, Weight: 1, State: paas.Pending, CreatedAt: t0, UpdatedAt: t0,
		})
		require.NoError(t, err)
		rec.State, rec.Attempts, rec.NextAttemptAt = state, attempts, next
		require.NoError(t, store.Update(ctx, rec))
		return rec.ID
	}
	pending := put("pending", paas.Pending, 0, time.Time{})
	retrying := put("retrying", paas.Retrying, 1, t0.Add(time.Minute))
	crashed := put("crashed", paas.InProgress, 1, time.Time{})
	done := put("done", paas.Completed, 1, time.Time{})

	f := start(t, store)
	a := f.gate.next(t)
	assert.Equal(t, pending, a.task.ID)
	// The crashed attempt was written back before the first dispatch: Pending, to run again.
	assert.Equal(t, paas.StatusSummary{InProgress: 1, Pending: 1, Retrying: 1}, f.summary())
	a.answer <- nil
	f.wait(pending)

	a = f.gate.next(t)
	assert.Equal(t, crashed, a.task.ID, "a crashed attempt runs again at once")
	assert.Equal(t, 1, a.task.Attempt, "the attempt before the crash was never recorded as started")
	st := f.status(crashed)
	assert.Equal(t, 1, st.Attempts, "the crashed attempt spends no retry")
	assert.Equal(t, 1, st.Interruptions)
	assert.Equal(t, t0.Add(time.Minute), f.status(retrying).NextAttemptAt, "the due time survives the restart")
	a.answer <- nil
	f.wait(crashed)
	f.clock.Advance(time.Minute)
	a = f.gate.next(t)
	assert.Equal(t, retrying, a.task.ID)
	a.answer <- nil
	f.wait(retrying)

	id, err := f.h.Submit(f.ctx, job{Name: "done"}, paas.BackendNative)
	require.NoError(t, err)
	assert.Equal(t, done, id, "a completed task is found by its program, not run again")
	assert.Equal(t, paas.StatusSummary{Completed: 3}, f.summary())
}

func TestLogsCarryTaskFields(t *testing.T) {
	f := start(t, nil, retry(paas.RetryConfig{MaxRetries: 0}))
	id := f.submit("a")
	f.gate.next(t).answer <- errors.New("boom")
	f.wait(id)
	entries := f.logs.FilterMessage("attempt failed").All()
	require.Len(t, entries, 1)
	fields := entries[0].ContextMap()
	assert.Equal(t, id.String(), fields["task_id"])
	assert.Equal(t, "native", fields["backend"])
	assert.Equal(t, "job", fields["routing_key"])
	assert.Equal(t, int64(1), fields["attempt"])
	assert.Equal(t, "boom", fields["error"])
}
