package memory_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/store/memory"
	"github.com/zkpaas/paas/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStoreConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) paas.TaskStore { return memory.New() })
}

// The zero Store is documented as ready to use, so it must pass the suite too.
func TestZeroStoreConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) paas.TaskStore { return new(memory.Store) })
}

func TestLen(t *testing.T) {
	ctx := t.Context()
	s := memory.New()
	require.Zero(t, s.Len())

	rec, err := s.Insert(ctx, storetest.NewRecord("a"))
	require.NoError(t, err)
	_, err = s.Insert(ctx, storetest.NewRecord("a"))
	require.NoError(t, err)
	require.Equal(t, 1, s.Len(), "a duplicate insert stores nothing")

	_, err = s.Insert(ctx, storetest.NewRecord("b"))
	require.NoError(t, err)
	rec.State = paas.Completed
	require.NoError(t, s.Update(ctx, rec))
	require.Equal(t, 2, s.Len(), "Len counts finished tasks too")

	n, err := s.Prune(ctx, time.Now().Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, 1, s.Len(), "Len does not count pruned tasks")
}

func TestInsertRejectsReusedID(t *testing.T) {
	ctx := t.Context()
	s := memory.New()
	first, err := s.Insert(ctx, storetest.NewRecord("a"))
	require.NoError(t, err)

	reused := storetest.NewRecord("b")
	reused.ID = first.ID
	_, err = s.Insert(ctx, reused)
	require.Error(t, err)
	require.Equal(t, 1, s.Len())

	got, err := s.Get(ctx, first.ID)
	require.NoError(t, err)
	require.Equal(t, first.Key, got.Key, "the first task must be untouched")
}
