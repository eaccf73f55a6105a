package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/service"
	"github.com/zkpaas/paas/store/bolt"
	"github.com/zkpaas/paas/store/memory"
)

// job is the program of every figure: a few bytes of JSON.
type job struct{ N int64 }

func (job) RoutingKey() paas.RoutingKey { return "job" }

// payload is the size of a job's encoding, which the heap figure leaves out.
func payload(n int64) int { return len(fmt.Sprintf(`{"N":%d}`, n)) }

// subject is a service under measurement, and its store.
type subject struct {
	svc   *service.ProverService
	h     service.ProverHandle
	close func()
}

// start runs a service with workers on BackendNative and handler h, on a memory store or a
// bolt file in dir.
func start(dir string, durable bool, workers int64, h handler.ProofHandler, retry *paas.RetryConfig) (*subject, error) {
	var store paas.TaskStore = memory.New()
	closeStore := func() {}
	if durable {
		b, err := bolt.Open(filepath.Join(dir, "bench.db"), nil)
		if err != nil {
			return nil, err
		}
		store, closeStore = b, func() { b.Close() }
	}
	svc, err := service.New(paas.Config{Workers: map[paas.Backend]int64{paas.BackendNative: workers}, Retry: retry},
		store, map[paas.RoutingKey]handler.ProofHandler{"job": h, "test": h})
	if err != nil {
		closeStore()
		return nil, err
	}
	if err := svc.Start(context.Background()); err != nil {
		closeStore()
		return nil, err
	}
	return &subject{svc: svc, h: svc.Handle(), close: func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = svc.Stop(ctx)
		<-svc.Stopped()
		closeStore()
	}}, nil
}

// submitAll submits jobs first..first+n-1 from submitters goroutines and returns their ids.
func submitAll(h service.ProverHandle, submitters int, first, n int64, opts ...paas.SubmitOption) ([]paas.TaskID, error) {
	ids := make([]paas.TaskID, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range submitters {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				id, err := h.Submit(context.Background(), job{N: first + i}, paas.BackendNative, opts...)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				ids[i] = id
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, err
	}
	return ids, nil
}

// waitAll waits for every task to end.
func waitAll(h service.ProverHandle, ids []paas.TaskID) error {
	for _, id := range ids {
		if _, err := h.Wait(context.Background(), id); err != nil {
			return err
		}
	}
	return nil
}

// gate is a handler whose attempts wait until it opens.
type gate struct {
	open chan struct{}
	once sync.Once
}

func newGate() *gate { return &gate{open: make(chan struct{})} }

func (g *gate) Prove(ctx context.Context, _ paas.Task) error {
	select {
	case <-g.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }
