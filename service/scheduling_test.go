package service_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/service"
	"github.com/zkpaas/paas/store/bolt"
)

// aggregator proves a job by storing "proof(name)" in the bolt store; a job with dependencies
// stores "proof(name)<-" followed by its dependencies' proofs, read back from the store.
func aggregator(store *bolt.Store) handler.ProofHandler {
	return handler.ProofHandlerFunc(func(ctx context.Context, task paas.Task) error {
		var j job
		if err := (paas.JSONCodec{}).Unmarshal(task.Program, &j); err != nil {
			return paas.Permanent(err)
		}
		deps, err := handler.DependencyProofs(ctx, store)
		if err != nil {
			return err
		}
		proof := "proof(" + j.Name + ")"
		if len(deps) > 0 {
			parts := make([]string, len(deps))
			for i, d := range deps {
				parts[i] = string(d.Receipt)
			}
			proof += "<-" + strings.Join(parts, "+")
		}
		return store.StoreProof(ctx, task.ID, paas.Proof{Backend: task.Backend, Receipt: []byte(proof)})
	})
}

func startAggregator(t *testing.T, store *bolt.Store) (*service.ProverService, service.ProverHandle) {
	t.Helper()
	svc, err := service.New(paas.Config{Workers: map[paas.Backend]int64{paas.BackendNative: 2}}, store,
		map[paas.RoutingKey]handler.ProofHandler{"job": aggregator(store)})
	require.NoError(t, err)
	require.NoError(t, svc.Start(context.Background()))
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	return svc, svc.Handle()
}

func TestDependenciesSurviveRestartAndTheDependentReadsTheirProofs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "paas.db")
	store := openBolt(t, path)

	// A first service only accepts the tasks: its one worker is held by a gate.
	first := startOn(t, store)
	hold := first.submit("hold")
	first.gate.next(t)
	a := first.submit("a")
	b := first.submit("b")
	root, err := first.h.Submit(first.ctx, job{Name: "root"}, paas.BackendNative, paas.After(a, b))
	require.NoError(t, err)
	assert.Equal(t, paas.Blocked, first.status(root).State)
	assert.Equal(t, []paas.TaskID{a, b}, first.status(root).DependsOn)
	assert.Equal(t, 1, first.summary().Blocked)
	stopCtx, cancel := context.WithCancel(ctx)
	cancel()
	_ = first.svc.Stop(stopCtx)
	require.NoError(t, store.Close())

	store = openBolt(t, path)
	_, h := startAggregator(t, store)
	res, err := h.Wait(ctx, root)
	require.NoError(t, err)
	assert.Equal(t, paas.Completed, res.State)
	proof, err := store.Proof(ctx, root)
	require.NoError(t, err)
	assert.Equal(t, "proof(root)<-proof(a)+proof(b)", string(proof.Receipt))
	_, err = h.Wait(ctx, hold)
	require.NoError(t, err)
}

func TestSubmitRefusesUnknownAndFailedDependencies(t *testing.T) {
	f := start(t, nil)
	_, err := f.h.Submit(f.ctx, job{Name: "x"}, paas.BackendNative, paas.After(paas.NewTaskID()))
	assert.ErrorIs(t, err, paas.ErrUnknownDependency)
	_, err = f.h.Submit(f.ctx, job{Name: "x"}, paas.BackendNative, paas.After(paas.TaskID{}))
	assert.ErrorIs(t, err, paas.ErrUnknownDependency)

	bad := f.submit("bad")
	f.gate.next(t).answer <- paas.Permanent(errors.New("no"))
	f.wait(bad)
	_, err = f.h.Submit(f.ctx, job{Name: "x"}, paas.BackendNative, paas.After(bad))
	var dep *paas.DependencyError
	require.ErrorAs(t, err, &dep)
	assert.Equal(t, bad, dep.ID)
	assert.Equal(t, paas.Failed, dep.State)

	done := f.submit("done")
	f.gate.next(t).answer <- nil
	f.wait(done)
	// Identity is decided first: the same program with itself as a dependency is the task.
	id, err := f.h.Submit(f.ctx, job{Name: "done"}, paas.BackendNative, paas.After(done))
	require.NoError(t, err, "the same program as its own dependency")
	assert.Equal(t, done, id)
	running := f.submit("running")
	f.gate.next(t)
	id, err = f.h.Submit(f.ctx, job{Name: "running"}, paas.BackendNative, paas.After(running))
	require.NoError(t, err)
	assert.Equal(t, running, id)
	_, err = f.h.Submit(f.ctx, job{Name: "x"}, paas.BackendNative, paas.Timeout(-time.Second))
	assert.ErrorIs(t, err, paas.ErrInvalidOption)
}

func TestFailedDependencyFailsTheDependentAndItsWaiters(t *testing.T) {
	f := start(t, nil)
	a := f.submit("a")
	b, err := f.h.Submit(f.ctx, job{Name: "b"}, paas.BackendNative, paas.After(a))
	require.NoError(t, err)
	f.gate.next(t).answer <- paas.Permanent(errors.New("invalid block"))
	res := f.wait(b)
	assert.Equal(t, paas.Failed, res.State)
	var dep *paas.DependencyError
	require.ErrorAs(t, res.Err(), &dep)
	assert.Equal(t, a, dep.ID)
}

func TestInputNotReadyWaitsWithoutSpendingRetriesThenFailsAtTheBound(t *testing.T) {
	f := start(t, nil, retry(paas.RetryConfig{MaxRetries: paas.Disabled}), func(c *paas.Config) { c.MaxInputWait = time.Hour })
	id := f.submit("a")
	waited := make(chan paas.TaskResult, 1)
	go func() {
		res, err := f.h.Wait(f.ctx, id)
		assert.NoError(t, err)
		waited <- res
	}()
	for i := range 4 {
		a := f.gate.next(t)
		assert.Equal(t, i+1, a.task.Attempt, "Attempt counts every attempt")
		a.answer <- paas.NotReady(errors.New("batch not sealed"), 20*time.Minute)
		if i == 3 {
			break
		}
		require.NoError(t, f.clock.WaitForTimers(f.ctx, 1))
		st := f.status(id)
		assert.Equal(t, paas.Blocked, st.State)
		assert.Equal(t, 0, st.Attempts, "waiting for input spends no attempt")
		assert.Equal(t, f.clock.Now().Add(20*time.Minute), st.NextAttemptAt)
		f.clock.Advance(20 * time.Minute)
	}
	res := <-waited
	assert.Equal(t, paas.Failed, res.State, "the fourth wait would pass the hour")
	assert.Contains(t, res.Error, "input not ready for 1h0m0s, MaxInputWait 1h0m0s reached")
}

func TestHigherPriorityOvertakesAQueuedBackfill(t *testing.T) {
	f := start(t, nil)
	busy := f.submit("busy")
	running := f.gate.next(t)
	var backfill []paas.TaskID
	for i := range 3 {
		id, err := f.h.Submit(f.ctx, job{Name: fmt.Sprint("old", i)}, paas.BackendNative, paas.Priority(-1))
		require.NoError(t, err)
		backfill = append(backfill, id)
	}
	urgent, err := f.h.Submit(f.ctx, job{Name: "urgent"}, paas.BackendNative, paas.Priority(10))
	require.NoError(t, err)
	running.answer <- nil
	f.wait(busy)
	order := []paas.TaskID{}
	for range 4 {
		a := f.gate.next(t)
		order = append(order, a.task.ID)
		a.answer <- nil
	}
	assert.Equal(t, append([]paas.TaskID{urgent}, backfill...), order)
}

func TestAttemptTimeoutCancelsTheHandlerAndRetriesWithAFullTimeout(t *testing.T) {
	f := start(t, nil, func(c *paas.Config) {
		c.Timeouts = map[paas.Backend]time.Duration{paas.BackendNative: time.Minute}
	})
	id := f.submit("slow")
	a := f.gate.next(t)
	require.NoError(t, f.clock.WaitForTimers(f.ctx, 1)) // the deadline
	f.clock.Advance(time.Minute)
	<-a.ctx.Done()
	require.NoError(t, f.clock.WaitForTimers(f.ctx, 1)) // the retry
	st := f.status(id)
	assert.Equal(t, paas.Retrying, st.State)
	assert.Equal(t, 1, st.Attempts)
	assert.Contains(t, st.LastError, "attempt timed out")

	f.clock.Advance(time.Second)
	a = f.gate.next(t)
	assert.Equal(t, 2, a.task.Attempt)
	a.answer <- nil
	assert.Equal(t, paas.Completed, f.wait(id).State)
}

func TestCheckpointIsGivenBackAfterARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "paas.db")
	store := openBolt(t, path)
	first := startOn(t, store)
	id := first.submit("remote")
	a := first.gate.next(t)
	assert.Nil(t, a.task.Checkpoint)
	require.NoError(t, a.task.SaveCheckpoint(a.ctx, []byte("request 0xabc")))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = first.svc.Stop(ctx) // interrupts the attempt
	require.NoError(t, store.Close())

	store = openBolt(t, path)
	second := startOn(t, store, retry(paas.RetryConfig{MaxRetries: 2, BaseDelay: time.Second, MaxRestarts: 1, Jitter: paas.Disabled}))
	b := second.gate.next(t)
	assert.Equal(t, id, b.task.ID)
	assert.Equal(t, []byte("request 0xabc"), b.task.Checkpoint, "poll the request, do not pay for a new one")
	got, ok := paas.TaskFromContext(b.ctx)
	require.True(t, ok, "the handler's context carries the task")
	assert.Equal(t, id, got.ID)

	b.answer <- paas.Restart(errors.New("request expired"))
	require.NoError(t, second.clock.WaitForTimers(second.ctx, 1))
	assert.Equal(t, 1, second.status(id).Restarts)
	second.clock.Advance(time.Second)
	c := second.gate.next(t)
	assert.Nil(t, c.task.Checkpoint, "a restart starts fresh")
	c.answer <- nil
	second.wait(id)
}

func TestOperatorRetryGivesAFreshBudget(t *testing.T) {
	f := start(t, nil, retry(paas.RetryConfig{MaxRetries: paas.Disabled}))
	id := f.submit("a")
	f.gate.next(t).answer <- errors.New("boom")
	require.Equal(t, paas.Failed, f.wait(id).State)

	require.NoError(t, f.h.Retry(f.ctx, id))
	a := f.gate.next(t)
	assert.Equal(t, 1, a.task.Attempt)
	a.answer <- nil
	assert.Equal(t, paas.Completed, f.wait(id).State)

	assert.ErrorIs(t, f.h.Retry(f.ctx, id), paas.ErrNotRetryable, "a completed task is not retried")
	assert.ErrorIs(t, f.h.Retry(f.ctx, paas.NewTaskID()), paas.ErrTaskNotFound)
	running := f.submit("b")
	f.gate.next(t)
	assert.ErrorIs(t, f.h.Retry(f.ctx, running), paas.ErrNotRetryable)
}

func TestPruneDeletesOnlyOldFinishedTasks(t *testing.T) {
	f := start(t, nil)
	old := f.submit("old")
	f.gate.next(t).answer <- nil
	f.wait(old)
	f.clock.Advance(48 * time.Hour)
	recent := f.submit("recent")
	f.gate.next(t).answer <- nil
	f.wait(recent)
	unfinished := f.submit("unfinished")
	f.gate.next(t)

	n, err := f.h.Prune(f.ctx, 24*time.Hour)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	_, err = f.h.Status(f.ctx, old)
	assert.ErrorIs(t, err, paas.ErrTaskNotFound)
	assert.Equal(t, paas.Completed, f.status(recent).State)
	assert.Equal(t, paas.InProgress, f.status(unfinished).State)
	_, err = f.h.Prune(f.ctx, -time.Hour)
	assert.ErrorIs(t, err, paas.ErrInvalidOption)
}
