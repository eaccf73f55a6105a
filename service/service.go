// Package service runs proof tasks: ProverService owns the tasks and their workers, and
// ProverHandle is how the rest of a program submits, waits for, inspects and cancels them.
//
// The smallest complete use:
//
//	svc, err := service.New(paas.Config{
//		Workers: map[paas.Backend]int64{paas.BackendNative: 2},
//	}, memory.New(), map[paas.RoutingKey]handler.ProofHandler{"fib": fibHandler})
//	if err != nil { ... }
//	if err := svc.Start(ctx); err != nil { ... }
//	defer svc.Stop(context.Background())
//	res, err := svc.Handle().Execute(ctx, fibProgram{N: 10}, paas.BackendNative)
//
// One goroutine, the service loop, owns every unfinished task and takes commands from handles
// over a channel; handlers run on goroutines of their own, at most Config.Workers[backend]
// units of weight at a time, highest priority first; a scheduler goroutine hands back the
// tasks whose retry or input is due and the attempts whose deadline has passed; and a writer
// goroutine persists every change through the TaskStore, many at a time (group commit),
// before the loop makes it visible. Tasks wait for their dependencies without polling: the
// end of a task wakes the tasks blocked on it. The caller's duties: call Start before using
// the handle, and Stop before exit; handlers must return when their context is cancelled.
package service

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
)

// ProverService runs proof tasks. Build it with New, then Start it; Stop it before exit.
type ProverService struct {
	cfg      paas.Config // with defaults
	store    paas.TaskStore
	handlers map[paas.RoutingKey]handler.ProofHandler
	log      *zap.Logger

	cmds    chan command   // handles to loop; unbuffered: a command is taken when the loop is ready
	results chan []written // writer to loop
	ended   chan ended     // workers to loop

	lifecycle sync.Mutex    // serialises Start against Stop
	started   chan struct{} // closed by Start once the loop runs
	stopOnce  sync.Once
	stopping  chan struct{} // closed by Stop: stop intake, let handlers finish
	abortOnce sync.Once
	aborting  chan struct{} // closed when Stop's ctx ends: cancel handlers
	doneOnce  sync.Once
	done      chan struct{} // closed once every goroutine has returned: by the loop, or by a Stop before Start

	active atomic.Int64 // handlers running, for Stop to count those it abandons
}

// command is a step of the state, sent by a handle and run on the loop.
type command func(*state)

// ended is the outcome of a handler.
type ended struct {
	id  paas.TaskID
	err error
}

// New returns a service that runs tasks stored in store with the given handlers, one per
// routing key. It validates everything and returns an error wrapping paas.ErrInvalidConfig
// rather than panicking; it starts nothing.
func New(cfg paas.Config, store paas.TaskStore, handlers map[paas.RoutingKey]handler.ProofHandler) (*ProverService, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, fmt.Errorf("%w: nil TaskStore", paas.ErrInvalidConfig)
	}
	if len(handlers) == 0 {
		return nil, fmt.Errorf("%w: no handlers", paas.ErrInvalidConfig)
	}
	hs := make(map[paas.RoutingKey]handler.ProofHandler, len(handlers))
	for rk, h := range handlers {
		if isNil(h) {
			return nil, fmt.Errorf("%w: nil handler for routing key %q", paas.ErrInvalidConfig, rk)
		}
		hs[rk] = h
	}
	return &ProverService{
		cfg:      cfg,
		store:    store,
		handlers: hs,
		log:      cfg.Logger,
		cmds:     make(chan command),
		results:  make(chan []written),
		ended:    make(chan ended),
		started:  make(chan struct{}),
		stopping: make(chan struct{}),
		aborting: make(chan struct{}),
		done:     make(chan struct{}),
	}, nil
}

// Handle returns the handle through which tasks are submitted and observed. Handles are small
// values, safe for concurrent use; pass them to the parts of a program that submit tasks
// without giving them control of the service's lifecycle.
func (s *ProverService) Handle() ProverHandle { return ProverHandle{s: s} }

// Start loads the unfinished tasks from the store and starts the service's goroutines. ctx
// bounds the loading only. It returns paas.ErrAlreadyStarted if called twice, and
// paas.ErrStopped after Stop.
func (s *ProverService) Start(ctx context.Context) error {
	s.lifecycle.Lock()
	defer s.lifecycle.Unlock()
	switch {
	case isClosed(s.stopping):
		return paas.ErrStopped
	case isClosed(s.started):
		return paas.ErrAlreadyStarted
	}
	recs, err := s.store.Unfinished(ctx)
	if err != nil {
		// Nothing was started; Start may be called again.
		return fmt.Errorf("paas: load unfinished tasks: %w", err)
	}
	ended, err := s.endedDependencies(ctx, recs)
	if err != nil {
		return err
	}
	st := newState(s.cfg, s.runnable)
	st.load(recs, ended)
	s.log.Info("service started", zap.Int("unfinished_tasks", len(recs)))
	go s.run(st)
	close(s.started)
	return nil
}

// endedDependencies reads the state of the dependencies of Blocked tasks that are not among
// recs, and so have ended (or been pruned: those are absent from the result).
func (s *ProverService) endedDependencies(ctx context.Context, recs []paas.TaskRecord) (map[paas.TaskID]paas.TaskState, error) {
	unfinished := make(map[paas.TaskID]bool, len(recs))
	for _, r := range recs {
		unfinished[r.ID] = true
	}
	ended := make(map[paas.TaskID]paas.TaskState)
	for _, r := range recs {
		if r.State != paas.Blocked {
			continue
		}
		for _, dep := range r.DependsOn {
			if _, seen := ended[dep]; seen || unfinished[dep] {
				continue
			}
			rec, err := s.store.Get(ctx, dep)
			switch {
			case errors.Is(err, paas.ErrTaskNotFound):
				ended[dep] = 0
			case err != nil:
				return nil, fmt.Errorf("paas: load dependency %s of task %s: %w", dep, r.ID, err)
			default:
				ended[dep] = rec.State
			}
		}
	}
	return ended, nil
}

// isNil reports whether h is nil, or a nil func, pointer or map in a non-nil interface (a nil
// handler.ProofHandlerFunc, say), which would panic on every attempt.
func isNil(h handler.ProofHandler) bool {
	if h == nil {
		return true
	}
	switch v := reflect.ValueOf(h); v.Kind() {
	case reflect.Func, reflect.Pointer, reflect.Map, reflect.Interface, reflect.Slice, reflect.Chan:
		return v.IsNil()
	}
	return false
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Stop stops the service: it stops intake at once (handle calls return paas.ErrStopped from
// then on), lets running handlers finish until ctx ends, then cancels their contexts. Tasks
// interrupted that way go back to Pending without using an attempt. Stop returns nil once
// every goroutine of the service has returned, if the handlers finished on their own before
// ctx ended; and ctx.Err() if they had to be cancelled and then returned, with the writes of
// their outcomes, within StopGrace.
//
// Otherwise Stop does not wait longer: StopGrace after ctx ends it returns a
// *paas.AbandonedError, which counts the handlers that did not return once their context was
// cancelled (an in-process prover that cannot be interrupted), or says that the store's
// writes are still in flight. Stopped is closed once they have returned too; until then their
// tasks stay InProgress in the store, and a task still so at the next Start counts as
// interrupted (see paas.RetryConfig.MaxInterruptions).
//
// Stop is idempotent and safe to call concurrently. A Stop before Start prevents the start,
// and closes Stopped.
func (s *ProverService) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stopping) })
	// Once stopping is closed no Start can succeed; wait for one under way to finish.
	s.lifecycle.Lock()
	started := isClosed(s.started)
	if !started {
		s.closeDone()
	}
	s.lifecycle.Unlock()
	if !started {
		return nil
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
	}
	s.abortOnce.Do(func() { close(s.aborting) })
	grace := time.NewTimer(StopGrace)
	defer grace.Stop()
	select {
	case <-s.done:
		return ctx.Err()
	case <-grace.C:
	}
	if n := s.active.Load(); n > 0 {
		s.log.Warn("stop: handlers abandoned, still running after cancellation", zap.Int64("handlers", n))
		return &paas.AbandonedError{Handlers: int(n), Err: ctx.Err()}
	}
	// Every handler has returned; what is left is the writes of their outcomes.
	grace.Reset(StopGrace)
	select {
	case <-s.done:
		return ctx.Err()
	case <-grace.C:
		s.log.Warn("stop: the store's writes still in flight")
		return &paas.AbandonedError{Err: ctx.Err()}
	}
}

// StopGrace is how long Stop waits, once its ctx has ended and the handlers' contexts are
// cancelled, for the handlers to return before it abandons them. It is measured on the
// system clock, whatever Config.Clock is.
const StopGrace = 100 * time.Millisecond

func (s *ProverService) closeDone() { s.doneOnce.Do(func() { close(s.done) }) }

// Stopped is closed once the service has stopped and every goroutine of it, abandoned
// handlers included, has returned; or once Stop is called on a service never started.
func (s *ProverService) Stopped() <-chan struct{} { return s.done }
