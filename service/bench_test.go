package service_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/service"
	"github.com/zkpaas/paas/store/bolt"
	"github.com/zkpaas/paas/store/storetest"
)

// The benchmarks below measure group commit on the durable store, in one run:
//
//	go test -run '^$' -bench 'DurableCommit|Submit' -benchtime 3s -count 5 ./service
//
// BenchmarkDurableCommit is the rate at which the store commits one task per transaction
// (one sync to disk each); BenchmarkSubmit64 is the rate at which 64 concurrent submitters get
// their tasks durably stored by a running service, which commits the inserts that pile up
// while a transaction is under way in the next one. BenchmarkSubmit1 is one submitter.

func BenchmarkDurableCommit(b *testing.B) {
	store, err := bolt.Open(filepath.Join(b.TempDir(), "paas.db"), nil)
	require.NoError(b, err)
	defer store.Close()
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if _, err := store.Insert(ctx, storetest.NewRecord(fmt.Sprint(i))); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}

// BenchmarkSubmit1 is one submitter: each Submit waits for its own commit, so nothing can be
// grouped; it shows what a durable commit costs through the service.
func BenchmarkSubmit1(b *testing.B) { benchmarkSubmit(b, 1) }

// BenchmarkSubmit64 is 64 concurrent submitters, whose inserts the service groups.
func BenchmarkSubmit64(b *testing.B) { benchmarkSubmit(b, 64) }

func benchmarkSubmit(b *testing.B, submitters int) {
	store, err := bolt.Open(filepath.Join(b.TempDir(), "paas.db"), nil)
	require.NoError(b, err)
	defer store.Close()
	// Proofs take minutes: while submitters are busy the workers are too, so the handler holds
	// its task until the service stops and the writes measured are the submits'.
	busy := handler.ProofHandlerFunc(func(ctx context.Context, _ paas.Task) error {
		<-ctx.Done()
		return ctx.Err()
	})
	svc, err := service.New(paas.Config{Workers: map[paas.Backend]int64{paas.BackendNative: 4}}, store,
		map[paas.RoutingKey]handler.ProofHandler{"job": busy})
	require.NoError(b, err)
	ctx := context.Background()
	require.NoError(b, svc.Start(ctx))
	defer func() {
		stopped, cancel := context.WithCancel(ctx)
		cancel() // interrupt the busy handlers at once
		_ = svc.Stop(stopped)
	}()
	h := svc.Handle()

	var n atomic.Int64
	b.ResetTimer()
	if submitters == 1 {
		for range b.N {
			if _, err := h.Submit(ctx, job{Name: fmt.Sprint(n.Add(1))}, paas.BackendNative); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		// RunParallel starts parallelism × GOMAXPROCS goroutines.
		b.SetParallelism(max(1, submitters/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := h.Submit(ctx, job{Name: fmt.Sprint(n.Add(1))}, paas.BackendNative); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "submits/s")
}
