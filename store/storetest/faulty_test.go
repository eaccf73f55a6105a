package storetest_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/store/memory"
	"github.com/zkpaas/paas/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errDisk = errors.New("disk on fire")

// A Faulty with nothing arranged must be a faithful store, over a store with WriteBatch and
// over one without (whose batches Faulty runs write by write).
func TestFaultyConformance(t *testing.T) {
	t.Run("BatchInner", func(t *testing.T) {
		storetest.Run(t, func(*testing.T) paas.TaskStore { return storetest.NewFaulty(memory.New()) })
	})
	t.Run("PlainInner", func(t *testing.T) {
		storetest.Run(t, func(*testing.T) paas.TaskStore { return storetest.NewFaulty(&faultyStore{}) })
	})
}

func TestFaultyFailInserts(t *testing.T) {
	ctx := t.Context()
	inner := memory.New()
	f := storetest.NewFaulty(inner)
	f.FailInserts(2, errDisk)

	for i := range 2 {
		_, err := f.Insert(ctx, storetest.NewRecord("a"))
		require.ErrorIs(t, err, errDisk, "insert %d", i)
	}
	require.Zero(t, inner.Len(), "a failed insert must store nothing")

	rec := storetest.NewRecord("a")
	got, err := f.Insert(ctx, rec)
	require.NoError(t, err, "only the next n inserts fail")
	require.Equal(t, rec.ID, got.ID)
	require.Equal(t, 1, inner.Len())
	require.Equal(t, 3, f.Inserts(), "failed inserts count as attempted")
	require.Zero(t, f.Updates())

	f.FailInserts(1, nil)
	_, err = f.Insert(ctx, storetest.NewRecord("b"))
	require.ErrorIs(t, err, storetest.ErrInjected, "a nil error means ErrInjected")

	f.FailInserts(5, errDisk)
	f.FailInserts(0, nil)
	_, err = f.Insert(ctx, storetest.NewRecord("b"))
	require.NoError(t, err, "FailInserts(0) cancels the arrangement")
}

func TestFaultyFailUpdates(t *testing.T) {
	ctx := t.Context()
	f := storetest.NewFaulty(memory.New())
	rec, err := f.Insert(ctx, storetest.NewRecord("a"))
	require.NoError(t, err)
	f.FailUpdates(1, errDisk)

	changed := rec
	changed.State = paas.InProgress
	require.ErrorIs(t, f.Update(ctx, changed), errDisk)
	got, err := f.Get(ctx, rec.ID)
	require.NoError(t, err)
	require.Equal(t, paas.Pending, got.State, "a failed update must change nothing")

	require.NoError(t, f.Update(ctx, changed))
	got, err = f.Get(ctx, rec.ID)
	require.NoError(t, err)
	require.Equal(t, paas.InProgress, got.State)
	require.Equal(t, 2, f.Updates())
	require.Equal(t, 1, f.Inserts())
}

func TestFaultyWriteBatch(t *testing.T) {
	for name, inner := range map[string]func() paas.TaskStore{
		"BatchInner": func() paas.TaskStore { return memory.New() },
		"PlainInner": func() paas.TaskStore { return &faultyStore{} },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			f := storetest.NewFaulty(inner())
			existing, err := f.Insert(ctx, storetest.NewRecord("existing"))
			require.NoError(t, err)

			f.FailInserts(1, errDisk)
			f.FailUpdates(1, errDisk)
			a, b := storetest.NewRecord("a"), storetest.NewRecord("b")
			changed := existing
			changed.State = paas.InProgress
			writes := []paas.Write{
				{Insert: true, Record: a},                // fails
				{Record: changed},                        // fails
				{Insert: true, Record: b},                // applies
				{Record: changed},                        // applies
				{Insert: true, Record: a},                // applies: only one insert was to fail
				{Record: storetest.NewRecord("unknown")}, // the inner store fails it
			}
			results := f.WriteBatch(ctx, writes)
			require.Len(t, results, len(writes))
			require.ErrorIs(t, results[0].Err, errDisk)
			require.ErrorIs(t, results[1].Err, errDisk)
			require.NoError(t, results[2].Err)
			require.Equal(t, b.ID, results[2].ID)
			require.NoError(t, results[3].Err)
			require.NoError(t, results[4].Err)
			require.Equal(t, a.ID, results[4].ID, "the failed insert must not have stored a")
			require.ErrorIs(t, results[5].Err, paas.ErrTaskNotFound, "the inner store's own errors come through")
			require.Greater(t, results[4].Seq, results[2].Seq, "passed writes keep their order")

			got, err := f.Get(ctx, existing.ID)
			require.NoError(t, err)
			require.Equal(t, paas.InProgress, got.State)
			require.Equal(t, 1+3, f.Inserts())
			require.Equal(t, 3, f.Updates())
			require.Equal(t, 1, f.Batches())
		})
	}
}

func TestFaultyFailBatches(t *testing.T) {
	ctx := t.Context()
	inner := memory.New()
	f := storetest.NewFaulty(inner)
	f.FailBatches(1, errDisk)
	f.FailInserts(1, errors.New("must not be used up by a failed batch"))

	writes := []paas.Write{{Insert: true, Record: storetest.NewRecord("a")}, {Record: storetest.NewRecord("b")}}
	results := f.WriteBatch(ctx, writes)
	require.Len(t, results, 2)
	for i, r := range results {
		require.ErrorIs(t, r.Err, errDisk, "write %d: a failed batch fails every write", i)
	}
	require.Zero(t, inner.Len(), "a failed batch applies nothing")
	require.Equal(t, 1, f.Inserts())
	require.Equal(t, 1, f.Updates())

	results = f.WriteBatch(ctx, writes[:1])
	require.ErrorContains(t, results[0].Err, "must not be used up", "the arranged insert failure comes after the batch")
	results = f.WriteBatch(ctx, writes[:1])
	require.NoError(t, results[0].Err)
	require.Equal(t, 1, inner.Len())
	require.Equal(t, 3, f.Batches())
}

// Arranged failures are consumed exactly once each, however many goroutines write at once.
func TestFaultyConcurrent(t *testing.T) {
	const goroutines, failures = 32, 10
	ctx := t.Context()
	inner := memory.New()
	f := storetest.NewFaulty(inner)
	f.FailInserts(failures, errDisk)

	errs := make([]error, goroutines)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range goroutines {
		wg.Go(func() {
			<-start
			rec := storetest.NewRecord(string(rune('A' + i)))
			if i%2 == 0 {
				_, errs[i] = f.Insert(ctx, rec)
				return
			}
			errs[i] = f.WriteBatch(ctx, []paas.Write{{Insert: true, Record: rec}})[0].Err
		})
	}
	close(start)
	wg.Wait()

	failed := 0
	for _, err := range errs {
		if err != nil {
			require.ErrorIs(t, err, errDisk)
			failed++
		}
	}
	assert.Equal(t, failures, failed)
	assert.Equal(t, goroutines-failures, inner.Len())
	assert.Equal(t, goroutines, f.Inserts())
}

func TestFaultyFailPrunes(t *testing.T) {
	ctx := t.Context()
	inner := memory.New()
	f := storetest.NewFaulty(inner)
	rec, err := f.Insert(ctx, storetest.NewRecord("a"))
	require.NoError(t, err)
	rec.State = paas.Completed
	require.NoError(t, f.Update(ctx, rec))
	later := time.Now().Add(time.Hour)

	f.FailPrunes(1, errDisk)
	n, err := f.Prune(ctx, later)
	require.ErrorIs(t, err, errDisk)
	require.Zero(t, n)
	require.Equal(t, 1, inner.Len(), "a failed prune must delete nothing")

	f.FailPrunes(1, nil)
	_, err = f.Prune(ctx, later)
	require.ErrorIs(t, err, storetest.ErrInjected, "a nil error means ErrInjected")

	f.FailPrunes(3, errDisk)
	f.FailPrunes(0, nil)
	n, err = f.Prune(ctx, later)
	require.NoError(t, err, "FailPrunes(0) cancels the arrangement")
	require.Equal(t, 1, n)
	require.Zero(t, inner.Len())
	require.Equal(t, 3, f.Prunes(), "failed prunes count as attempted")
	require.Equal(t, 1, f.Inserts())
	require.Equal(t, 1, f.Updates())
}

func TestFaultyPassesContext(t *testing.T) {
	f := storetest.NewFaulty(memory.New())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := f.Insert(ctx, storetest.NewRecord("a"))
	require.ErrorIs(t, err, context.Canceled, "Faulty must hand the caller's context to the inner store")
	_, err = f.Prune(ctx, time.Now())
	require.ErrorIs(t, err, context.Canceled, "Faulty must hand the caller's context to the inner store's Prune")
}
