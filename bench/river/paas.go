package main

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/service"
	"github.com/zkpaas/paas/store/bolt"
	"golang.org/x/sync/errgroup"
)

// job is paas's program: a few bytes of JSON, distinct for every task.
type job struct{ N int64 }

func (job) RoutingKey() paas.RoutingKey { return "job" }

// noop is the handler: the work is nothing, so what is measured is the orchestration.
var noop = handler.ProofHandlerFunc(func(context.Context, paas.Task) error { return nil })

// paasEndToEnd starts a service on a new bolt file in dir with o.capacity workers, and
// returns the tasks per second from the first Submit of o.submitters goroutines until every
// task's Wait has returned.
func paasEndToEnd(ctx context.Context, dir string, o options) (rate float64, err error) {
	store, err := bolt.Open(filepath.Join(dir, "bench.db"), nil)
	if err != nil {
		return 0, err
	}
	defer func() { err = errors.Join(err, store.Close()) }()
	svc, err := service.New(paas.Config{Workers: map[paas.Backend]int64{paas.BackendNative: o.capacity}},
		store, map[paas.RoutingKey]handler.ProofHandler{"job": noop})
	if err != nil {
		return 0, err
	}
	if err := svc.Start(ctx); err != nil {
		return 0, err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err = errors.Join(err, svc.Stop(stopCtx))
		<-svc.Stopped()
	}()
	h := svc.Handle()
	t0 := time.Now()
	ids, err := submitAll(ctx, h, o.submitters, int64(o.tasks))
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		res, err := h.Wait(ctx, id)
		if err == nil {
			err = res.Err()
		}
		if err != nil {
			return 0, err
		}
	}
	return float64(o.tasks) / time.Since(t0).Seconds(), nil
}

// submitAll submits jobs 0..n-1 from submitters goroutines and returns their ids.
func submitAll(ctx context.Context, h service.ProverHandle, submitters int, n int64) ([]paas.TaskID, error) {
	ids := make([]paas.TaskID, n)
	var next atomic.Int64
	g, ctx := errgroup.WithContext(ctx)
	for range submitters {
		g.Go(func() error {
			for {
				i := next.Add(1) - 1
				if i >= n {
					return nil
				}
				id, err := h.Submit(ctx, job{N: i}, paas.BackendNative)
				if err != nil {
					return err
				}
				ids[i] = id
			}
		})
	}
	return ids, g.Wait()
}
