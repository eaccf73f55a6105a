package service_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/clock"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/service"
	"github.com/zkpaas/paas/store/memory"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		os.Exit(crashChild(path)) // this process is a child of TestCrashRecoveryLosesNothing
	}
	goleak.VerifyTestMain(m)
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// job is the program of these tests.
type job struct {
	Name string
	W    int64 `json:",omitempty"`
}

func (job) RoutingKey() paas.RoutingKey { return "job" }

func (j job) Weight() int64 {
	if j.W == 0 {
		return 1
	}
	return j.W
}

// gate is a handler whose attempts block until the test answers them.
type gate struct {
	started chan attempt
}

type attempt struct {
	task   paas.Task
	ctx    context.Context
	answer chan error
}

func newGate() *gate { return &gate{started: make(chan attempt)} }

func (g *gate) Prove(ctx context.Context, task paas.Task) error {
	a := attempt{task: task, ctx: ctx, answer: make(chan error)}
	select {
	case g.started <- a:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-a.answer:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// next waits for the next attempt to start.
func (g *gate) next(t *testing.T) attempt {
	t.Helper()
	select {
	case a := <-g.started:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no attempt started")
		return attempt{}
	}
}

type fixture struct {
	t      *testing.T
	svc    *service.ProverService
	h      service.ProverHandle
	store  *memory.Store
	clock  *clock.Fake
	gate   *gate
	logs   *observer.ObservedLogs
	ctx    context.Context
	cancel context.CancelFunc
}

type option func(*paas.Config)

func retry(r paas.RetryConfig) option { return func(c *paas.Config) { c.Retry = &r } }

func workers(w map[paas.Backend]int64) option {
	return func(c *paas.Config) { c.Workers = w }
}

// start runs a service on store (a new one if nil) with the gate as handler for "job".
func start(t *testing.T, store *memory.Store, opts ...option) *fixture {
	t.Helper()
	if store == nil {
		store = memory.New()
	}
	f := startOn(t, store, opts...)
	f.store = store
	return f
}

// startOn runs a service on any store.
func startOn(t *testing.T, store paas.TaskStore, opts ...option) *fixture {
	t.Helper()
	return startWith(t, store, nil, opts...)
}

// startWith is startOn, with before called on the service before it starts.
func startWith(t *testing.T, store paas.TaskStore, before func(*service.ProverService), opts ...option) *fixture {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	f := &fixture{t: t, clock: clock.NewFake(t0), gate: newGate(), logs: logs}
	cfg := paas.Config{
		Workers: map[paas.Backend]int64{paas.BackendNative: 1},
		Retry:   &paas.RetryConfig{MaxRetries: 2, BaseDelay: time.Second, Multiplier: 2, MaxDelay: time.Minute, Jitter: paas.Disabled},
		Clock:   f.clock,
		Logger:  zap.New(core),
	}
	for _, o := range opts {
		o(&cfg)
	}
	svc, err := service.New(cfg, store, map[paas.RoutingKey]handler.ProofHandler{"job": f.gate})
	require.NoError(t, err)
	if before != nil {
		before(svc)
	}
	f.ctx, f.cancel = context.WithTimeout(context.Background(), 30*time.Second)
	require.NoError(t, svc.Start(f.ctx))
	f.svc, f.h = svc, svc.Handle()
	t.Cleanup(func() {
		stopCtx, cancel := context.WithCancel(context.Background())
		cancel() // interrupt whatever still runs
		_ = svc.Stop(stopCtx)
		f.cancel()
	})
	return f
}

func (f *fixture) submit(name string) paas.TaskID {
	f.t.Helper()
	id, err := f.h.Submit(f.ctx, job{Name: name}, paas.BackendNative)
	require.NoError(f.t, err)
	return id
}

func (f *fixture) status(id paas.TaskID) paas.TaskStatus {
	f.t.Helper()
	st, err := f.h.Status(f.ctx, id)
	require.NoError(f.t, err)
	return st
}

func (f *fixture) wait(id paas.TaskID) paas.TaskResult {
	f.t.Helper()
	res, err := f.h.Wait(f.ctx, id)
	require.NoError(f.t, err)
	return res
}

func (f *fixture) summary() paas.StatusSummary {
	f.t.Helper()
	s, err := f.h.Summary(f.ctx)
	require.NoError(f.t, err)
	return s
}
