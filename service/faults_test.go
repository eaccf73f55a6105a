package service_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/service"
	"github.com/zkpaas/paas/store/memory"
	"github.com/zkpaas/paas/store/storetest"
)

// faulty starts a service on a store that fails the writes a test chooses.
func faulty(t *testing.T) (*fixture, *storetest.Faulty, *memory.Store) {
	inner := memory.New()
	fs := storetest.NewFaulty(inner)
	f := startOn(t, fs)
	return f, fs, inner
}

func TestSubmitReturnsInsertErrorAndStoresNothing(t *testing.T) {
	f, fs, inner := faulty(t)
	boom := errors.New("disk full")
	fs.FailInserts(1, boom)
	id, err := f.h.Submit(f.ctx, job{Name: "a"}, paas.BackendNative)
	require.ErrorIs(t, err, boom)
	assert.True(t, id.IsZero())
	assert.Equal(t, 0, inner.Len(), "the task does not exist")
	assert.Equal(t, paas.StatusSummary{}, f.summary())

	id = f.submit("a") // the same program, once the store recovers
	f.gate.next(t).answer <- nil
	assert.Equal(t, paas.Completed, f.wait(id).State)
}

func TestFailedTransitionWriteIsRetriedAndNothingIsReportedBeforeItIsStored(t *testing.T) {
	inner := memory.New()
	fs := storetest.NewFaulty(inner)
	// Inserted Pending, as a task queued behind others is, so that it moves to InProgress by
	// a write of its own.
	f := startWith(t, fs, service.InsertPending)
	boom := errors.New("io timeout")

	// The write that moves the task to InProgress fails twice: the handler must not start, and
	// the task must still read Pending, until the write succeeds.
	fs.FailUpdates(2, boom)
	id := f.submit("a")
	require.NoError(t, f.clock.WaitForTimers(f.ctx, 1)) // the writer waits to retry
	assert.Equal(t, paas.Pending, f.status(id).State)
	f.clock.Advance(10 * time.Millisecond)
	require.NoError(t, f.clock.WaitForTimers(f.ctx, 1)) // failed again; backing off
	assert.Equal(t, paas.Pending, f.status(id).State)
	select {
	case <-f.gate.started:
		t.Fatal("the handler started before InProgress was stored")
	default:
	}
	f.clock.Advance(20 * time.Millisecond)
	a := f.gate.next(t)
	rec, err := inner.Get(f.ctx, id)
	require.NoError(t, err)
	assert.Equal(t, paas.InProgress, rec.State)
	assert.Equal(t, 1, rec.Attempts)

	// The write of the outcome fails once: waiters hear nothing until it is stored.
	waited := make(chan paas.TaskResult, 1)
	go func() {
		res, err := f.h.Wait(f.ctx, id)
		assert.NoError(t, err)
		waited <- res
	}()
	fs.FailUpdates(1, boom)
	a.answer <- nil
	require.NoError(t, f.clock.WaitForTimers(f.ctx, 1))
	assert.Equal(t, paas.InProgress, f.status(id).State)
	assert.Empty(t, waited)
	f.clock.Advance(10 * time.Millisecond)
	assert.Equal(t, paas.Completed, (<-waited).State)
	rec, err = inner.Get(f.ctx, id)
	require.NoError(t, err)
	assert.Equal(t, paas.Completed, rec.State)
}

func TestStopGivesUpOnAStoreThatKeepsFailing(t *testing.T) {
	f, fs, inner := faulty(t)
	id := f.submit("a")
	a := f.gate.next(t)
	fs.FailUpdates(1_000_000, errors.New("store down"))
	a.answer <- nil
	require.NoError(t, f.clock.WaitForTimers(f.ctx, 1))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, f.svc.Stop(ctx), context.Canceled, "Stop returns once its ctx ends, without hanging on the store")
	rec, err := inner.Get(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, paas.InProgress, rec.State, "the store keeps the last state it stored; the next start retries it")
}
