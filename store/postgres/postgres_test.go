package postgres_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/internal/pgtest"
	"github.com/zkpaas/paas/store/postgres"
	"github.com/zkpaas/paas/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// open returns a store on a schema of t's own, closed when t ends.
func open(t *testing.T) *postgres.Store {
	t.Helper()
	url := pgtest.URL(t)
	s, err := postgres.Open(t.Context(), url, &postgres.Options{Schema: pgtest.Schema(t, url)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) paas.TaskStore { return open(t) })
}

func TestNodesStartingAtOnceMigrateOnce(t *testing.T) {
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url)
	const nodes = 8
	stores := make([]*postgres.Store, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() { stores[i], errs[i] = postgres.Open(t.Context(), url, &postgres.Options{Schema: schema}) })
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "node %d", i)
		defer stores[i].Close()
	}
	// Every node sees the tasks of the others: one schema, migrated once.
	rec, err := stores[0].Insert(t.Context(), storetest.NewRecord("shared"))
	require.NoError(t, err)
	got, err := stores[nodes-1].Get(t.Context(), rec.ID)
	require.NoError(t, err)
	storetest.RequireRecordEqual(t, rec, got)
}

func TestInvalidSchema(t *testing.T) {
	url := pgtest.URL(t)
	for _, name := range []string{"Paas", "1paas", "pa-as", "paas; DROP TABLE x", string(make([]byte, 64))} {
		_, err := postgres.Open(t.Context(), url, &postgres.Options{Schema: name})
		require.ErrorIs(t, err, postgres.ErrInvalidSchema, "schema %q", name)
	}
}

func TestClosedStore(t *testing.T) {
	s := open(t)
	require.NoError(t, s.Close())
	_, err := s.Insert(t.Context(), storetest.NewRecord("after close"))
	require.ErrorIs(t, err, paas.ErrStoreClosed)
	_, err = s.Unfinished(t.Context())
	require.ErrorIs(t, err, paas.ErrStoreClosed)
	require.NoError(t, s.Close()) // idempotent
}
