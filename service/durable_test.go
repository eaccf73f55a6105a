package service_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/store/bolt"
)

func openBolt(t *testing.T, path string) *bolt.Store {
	t.Helper()
	store, err := bolt.Open(path, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	return store
}

func TestReopeningTheStoreResumesEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "paas.db")
	store := openBolt(t, path)
	first := startOn(t, store)

	done := first.submit("done")
	first.gate.next(t).answer <- nil
	first.wait(done)

	retrying := first.submit("retrying")
	first.gate.next(t).answer <- errors.New("prover busy")
	require.NoError(t, first.clock.WaitForTimers(first.ctx, 1))
	due := first.status(retrying).NextAttemptAt
	require.Equal(t, t0.Add(time.Second), due)

	crashed := first.submit("crashed")
	running := first.gate.next(t)
	pending := first.submit("pending")
	// Stop waits for running handlers: answer this one after a stop has begun, so that
	// "crashed" is put back as a crash would leave it, below.
	stopped := make(chan error)
	go func() { stopped <- first.svc.Stop(context.Background()) }()
	running.answer <- errors.New("interrupted")
	require.NoError(t, <-stopped)
	require.NoError(t, store.Close())

	// A crash leaves the task that was running InProgress in the file.
	store = openBolt(t, path)
	rec, err := store.Get(context.Background(), crashed)
	require.NoError(t, err)
	rec.State, rec.NextAttemptAt = paas.InProgress, time.Time{}
	rec.Version++
	require.NoError(t, store.Update(context.Background(), rec))
	attempts := rec.Attempts

	second := startOn(t, store)
	a := second.gate.next(t)
	assert.Equal(t, pending, a.task.ID, "the pending task runs")
	a.answer <- nil
	second.wait(pending)

	a = second.gate.next(t)
	assert.Equal(t, crashed, a.task.ID, "the interrupted task runs again once its write is stored")
	a.answer <- nil
	second.wait(crashed)
	st := second.status(crashed)
	assert.Equal(t, attempts, st.Attempts, "the interrupted attempt spends no retry")
	assert.Equal(t, 1, st.Interruptions)

	st = second.status(retrying)
	assert.Equal(t, paas.Retrying, st.State)
	assert.Equal(t, due, st.NextAttemptAt, "a restart does not reset backoff")
	assert.Equal(t, 1, st.Attempts)

	id, err := second.h.Submit(second.ctx, job{Name: "done"}, paas.BackendNative)
	require.NoError(t, err)
	assert.Equal(t, done, id, "a completed task keeps its id")
	assert.Equal(t, paas.Completed, second.status(done).State)

	second.clock.Advance(time.Second)
	a = second.gate.next(t)
	assert.Equal(t, retrying, a.task.ID, "a completed task is not proven again")
	a.answer <- nil
	second.wait(retrying)
}

func TestClosingTheStoreUnderARunningServiceGivesClearErrorsAndNoHang(t *testing.T) {
	store := openBolt(t, filepath.Join(t.TempDir(), "paas.db"))
	f := startOn(t, store)
	id := f.submit("a")
	a := f.gate.next(t)
	require.NoError(t, store.Close())

	_, err := f.h.Submit(f.ctx, job{Name: "b"}, paas.BackendNative)
	assert.ErrorIs(t, err, paas.ErrStoreClosed)
	a.answer <- nil // its outcome cannot be stored, and is not retried against a closed store
	_, err = f.h.Wait(f.ctx, id)
	assert.ErrorIs(t, err, paas.ErrStoreClosed, "the task is no longer held and the store cannot say")
	assert.NoError(t, f.svc.Stop(f.ctx))
}
