package service_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/internal/taskrec"
	"github.com/zkpaas/paas/service"
	"github.com/zkpaas/paas/store/memory"
)

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
		{"negative retries", paas.Config{Workers: w, Retry: &paas.RetryConfig{MaxRetries: -2}}, memory.New(), h},
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
		rec, err := store.Insert(ctx, taskrec.New("job", p, paas.BackendNative, t0))
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
	f := start(t, nil, retry(paas.RetryConfig{MaxRetries: paas.Disabled}))
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
