package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/internal/pgtest"
	"github.com/zkpaas/paas/service"
	"github.com/zkpaas/paas/store/postgres"
)

type square struct{ N int }

func (square) RoutingKey() paas.RoutingKey { return "square" }

// run starts a service on store with handler h, stopped when t ends.
func run(t *testing.T, store paas.TaskStore, h handler.ProofHandler) (*service.ProverService, service.ProverHandle) {
	t.Helper()
	svc, err := service.New(paas.Config{Workers: map[paas.Backend]int64{paas.BackendNative: 8}}, store,
		map[paas.RoutingKey]handler.ProofHandler{"square": h})
	require.NoError(t, err)
	require.NoError(t, svc.Start(t.Context()))
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	return svc, svc.Handle()
}

// A service on PostgreSQL runs tasks with dependencies and priorities to completion, storing
// a proof of each in the same database.
func TestServiceRunsTasks(t *testing.T) {
	store := open(t)
	_, h := run(t, store, handler.ProofHandlerFunc(func(ctx context.Context, task paas.Task) error {
		return store.StoreProof(ctx, task.ID, paas.Proof{Backend: task.Backend, PublicValues: task.Program})
	}))
	ctx := t.Context()
	var ids []paas.TaskID
	for i := range 100 {
		var opts []paas.SubmitOption
		if i%2 == 1 {
			opts = append(opts, paas.After(ids[i-1]), paas.Priority(i%3))
		}
		id, err := h.Submit(ctx, square{N: i}, paas.BackendNative, opts...)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	for i, id := range ids {
		res, err := h.Wait(ctx, id)
		require.NoError(t, err)
		require.Equal(t, paas.Completed, res.State, "task %d", i)
		proof, err := store.Proof(ctx, id)
		require.NoError(t, err)
		require.NotEmpty(t, proof.PublicValues)
	}
	sum, err := h.Summary(ctx)
	require.NoError(t, err)
	require.Equal(t, 100, sum.Completed)
}

// Tasks accepted by a node that stops before running them are run by the next node on the
// database, and a program submitted again is the same task.
func TestServiceResumesAfterRestart(t *testing.T) {
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url)
	first, err := postgres.Open(t.Context(), url, &postgres.Options{Schema: schema})
	require.NoError(t, err)
	defer first.Close()
	started := make(chan struct{}, 8)
	svc, h := run(t, first, handler.ProofHandlerFunc(func(ctx context.Context, _ paas.Task) error {
		started <- struct{}{}
		<-ctx.Done() // a proof that outlives the process
		return ctx.Err()
	}))
	var ids []paas.TaskID
	for i := range 20 {
		id, err := h.Submit(t.Context(), square{N: i}, paas.BackendNative)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	for range 8 {
		<-started
	}
	stop, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	_ = svc.Stop(stop) // cancels the running handlers: their tasks go back to Pending

	second, err := postgres.Open(t.Context(), url, &postgres.Options{Schema: schema})
	require.NoError(t, err)
	defer second.Close()
	_, h2 := run(t, second, handler.ProofHandlerFunc(func(context.Context, paas.Task) error { return nil }))
	for i, id := range ids {
		again, err := h2.Submit(t.Context(), square{N: i}, paas.BackendNative)
		require.NoError(t, err)
		require.Equal(t, id, again, "task %d submitted again", i)
		res, err := h2.Wait(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, paas.Completed, res.State, "task %d", i)
	}
}
