package service

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/internal/attempt"
	"github.com/zkpaas/paas/scheduler"
)

// ProverService runs proof tasks. Build it with New, then Start it; Stop it before exit.
type ProverService struct {
	cfg      paas.Config // with defaults
	store    paas.TaskStore
	handlers map[paas.RoutingKey]handler.ProofHandler
	log      *zap.Logger

	cmds    chan command            // handles to loop; unbuffered: a command is taken when the loop is ready
	results chan []paas.WriteResult // writer to loop, one answer per write of the batch
	ended   chan ended              // workers to loop; buffered, so that a handler that returns need not wait for the loop

	lifecycle sync.Mutex    // serialises Start against Stop
	started   chan struct{} // closed by Start once the loop runs
	stopOnce  sync.Once
	stopping  chan struct{} // closed by Stop: stop intake, let handlers finish
	abortOnce sync.Once
	aborting  chan struct{} // closed when Stop's ctx ends: cancel handlers
	doneOnce  sync.Once
	done      chan struct{} // closed once every goroutine has returned: by the loop, or by a Stop before Start

	active atomic.Int64 // handlers running, for Stop to count those it abandons
	counts *counts      // the loop's counts per state, set by Start, read by Summary
	// insertPending turns off inserting InProgress a task that can start at once (tests).
	insertPending bool
}

// command is a step of the core, sent by a handle and run on the loop.
type command func(*core)

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
		results:  make(chan []paas.WriteResult),
		ended:    make(chan ended, endedBuffer(cfg.Workers)),
		started:  make(chan struct{}),
		stopping: make(chan struct{}),
		aborting: make(chan struct{}),
		done:     make(chan struct{}),
	}, nil
}

// endedBuffer is the size of the channel of handlers' outcomes: room for every handler that
// can run at once, up to a bound.
func endedBuffer(workers map[paas.Backend]int64) int {
	var n int64
	for _, w := range workers {
		n += w
	}
	return int(min(n, 4096))
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
	c := newCore(s.cfg, s.runnable)
	c.startOnInsert = !s.insertPending
	c.load(recs, ended)
	s.counts = c.counts
	s.log.Info("service started", zap.Int("unfinished_tasks", len(recs)))
	go s.run(c)
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

// run is the service loop: the one goroutine that owns c. It takes one event at a time,
// applies it to c, then carries out what c asked for. It never blocks on a handler or on the
// store: writes go to the writer goroutine as one batch whenever the writer is free, so writes
// that pile up while the store is busy are committed together.
func (s *ProverService) run(c *core) {
	ctx, cancel := context.WithCancel(context.Background())
	sched := scheduler.New(s.cfg.Clock)
	batches := make(chan []paas.Write)
	var helpers, workers sync.WaitGroup
	helpers.Go(func() { _ = sched.Run(ctx) })
	helpers.Go(func() { s.writer(ctx, batches) })
	defer func() {
		// The loop leaves only when no handler runs and no write is in flight, so the helpers
		// are idle and the workers have returned or are about to.
		cancel()
		helpers.Wait()
		workers.Wait()
		s.log.Info("service stopped")
		s.closeDone()
	}()

	stopping, aborting := s.stopping, s.aborting
	writerBusy := false
	var inWriter, spare []paas.Write
	for {
		c.dispatch()
		s.carryOut(c, sched, &workers)
		if c.stopping && c.idle() {
			return
		}
		// Backpressure without flags: the send case exists only when there is something to send
		// and the writer is free to take it.
		var toWriter chan<- []paas.Write
		if len(c.writes) > 0 && !writerBusy {
			s.gather(c)
			toWriter = batches
		}
		select {
		case cmd := <-s.cmds:
			cmd(c)
		case toWriter <- c.writes:
			// The writer owns the batch until it answers; the next one fills the spare.
			inWriter, c.writes, spare = c.writes, spare, nil
			writerBusy = true
		case res := <-s.results:
			writerBusy = false
			for i := range inWriter {
				c.commit(answer(&inWriter[i], &res[i]))
			}
			// The batch is free again, and is kept rather than let the next one grow from
			// nothing.
			clear(inWriter)
			spare, inWriter = inWriter[:0], nil
		case e := <-s.ended:
			c.handlerDone(e.id, e.err)
		case d := <-sched.Due():
			c.due(d)
		case <-stopping:
			c.stop()
			stopping = nil
		case <-aborting:
			// Stop closes both at once, and the loop may take this one first: stop intake
			// and dispatch here too, so that nothing starts after the interruption.
			c.stop()
			stopping = nil
			c.interrupt()
			aborting = nil
		}
		s.drain(c, sched.Due())
	}
}

// drain takes, without waiting, the handlers' outcomes, the commands and the due entries that
// are ready, up to maxGather of them: under load most events find others behind them, and
// taking those in a small select costs less than going round the whole loop for each.
func (s *ProverService) drain(c *core, due <-chan scheduler.Due) {
	for range maxGather {
		select {
		case e := <-s.ended:
			c.handlerDone(e.id, e.err)
		case cmd := <-s.cmds:
			cmd(c)
		case d := <-due:
			c.due(d)
		default:
			return
		}
	}
}

// gather lets the callers that the last commit answered send their next commands, and takes
// them, before a batch goes to the writer. Without it the first caller to come back would
// leave alone in a batch of one while the others queue for the next, and batches would
// alternate small and large. It costs a yield of the processor, not a wait.
func (s *ProverService) gather(c *core) {
	runtime.Gosched()
	for range maxGather {
		select {
		case cmd := <-s.cmds:
			cmd(c)
		default:
			return
		}
	}
}

// maxGather bounds how many commands gather takes, so that a flood of commands cannot hold a
// batch back for long.
const maxGather = 1024

// carryOut empties the outboxes of c other than writes: it sets timers and launches handlers.
func (s *ProverService) carryOut(c *core, sched *scheduler.RetryScheduler, workers *sync.WaitGroup) {
	for _, d := range c.timers {
		sched.Schedule(d)
	}
	c.timers = c.timers[:0]
	for _, job := range c.starts {
		h := s.handlers[job.task.RoutingKey]
		task := job.task
		task.SaveCheckpoint = func(ctx context.Context, checkpoint []byte) error {
			return s.saveCheckpoint(ctx, task.ID, task.Attempt, checkpoint)
		}
		ctx := paas.ContextWithTask(job.ctx, task)
		s.active.Add(1)
		workers.Go(func() {
			err := attempt.Prove(ctx, h, task)
			s.active.Add(-1)
			// The loop reads ended until no handler runs, so this send always completes.
			s.ended <- ended{id: task.ID, err: err}
		})
	}
	clear(c.starts)
	c.starts = c.starts[:0]
}
