package service

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/scheduler"
)

// run is the service loop: the one goroutine that owns st. It takes one event at a time,
// applies it to st, then carries out what st asked for. It never blocks on a handler or on the
// store: writes go to the writer goroutine as one batch whenever the writer is free, so writes
// that pile up while the store is busy are committed together.
func (s *ProverService) run(st *state) {
	ctx, cancel := context.WithCancel(context.Background())
	sched := scheduler.New(s.cfg.Clock)
	batches := make(chan []write)
	var helpers, workers sync.WaitGroup
	helpers.Go(func() { _ = sched.Run(ctx) })
	helpers.Go(func() { s.write(ctx, batches) })
	defer func() {
		// The loop leaves only when no handler runs and no write is in flight, so the helpers
		// are idle and the workers have returned or are about to.
		cancel()
		helpers.Wait()
		workers.Wait()
		s.log.Info("service stopped")
		close(s.done)
	}()

	stopping, aborting := s.stopping, s.aborting
	for {
		st.dispatch()
		s.carryOut(st, sched, &workers)
		if st.stopping && st.idle() {
			return
		}
		// Backpressure without flags: the send case exists only when there is something to send.
		var toWriter chan<- []write
		if len(st.writes) > 0 {
			toWriter = batches
		}
		select {
		case cmd := <-s.cmds:
			cmd(st)
		case toWriter <- st.writes:
			st.writes = nil // the writer owns the batch now
		case ws := <-s.results:
			for _, w := range ws {
				st.commit(w)
			}
		case e := <-s.ended:
			st.handlerDone(e.id, e.err)
		case d := <-sched.Due():
			st.retryDue(d)
		case <-stopping:
			st.stop()
			stopping = nil
		case <-aborting:
			st.interrupt()
			aborting = nil
		}
	}
}

// carryOut empties the outboxes of st other than writes: it schedules retries and launches
// handlers.
func (s *ProverService) carryOut(st *state, sched *scheduler.RetryScheduler, workers *sync.WaitGroup) {
	for _, d := range st.retries {
		sched.Schedule(d.ID, d.At)
	}
	st.retries = st.retries[:0]
	for _, job := range st.starts {
		h := s.handlers[job.task.RoutingKey]
		workers.Go(func() {
			err := prove(job.ctx, h, job.task)
			// The loop reads ended until no handler runs, so this send always completes.
			s.ended <- ended{id: job.task.ID, err: err}
		})
	}
	clear(st.starts)
	st.starts = st.starts[:0]
}

// prove runs one attempt, turning a panic into a *paas.PanicError.
func prove(ctx context.Context, h handler.ProofHandler, task paas.Task) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &paas.PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return h.Prove(ctx, task)
}

// write persists batches from the loop and sends back the store's answers. Inserts are tried
// once, and their errors go back to the submitter. Updates record a change that has already
// happened (a handler ran, a retry is due), so they are tried until they succeed, with backoff,
// or until Stop gives up waiting.
func (s *ProverService) write(ctx context.Context, batches <-chan []write) {
	for {
		select {
		case batch := <-batches:
			res := make([]written, len(batch))
			for i, w := range batch {
				res[i] = s.persist(w)
			}
			select {
			case s.results <- res:
			case <-ctx.Done():
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// Backoff between attempts to write an update.
const (
	writeRetryBase = 10 * time.Millisecond
	writeRetryMax  = 5 * time.Second
)

func (s *ProverService) persist(w write) written {
	// Store calls are not bound to Stop's ctx: a task interrupted by Stop must still be written
	// back to Pending.
	ctx := context.Background()
	if w.insert {
		stored, err := s.store.Insert(ctx, w.rec)
		return written{write: w, stored: stored, err: err}
	}
	delay := writeRetryBase
	for {
		err := s.store.Update(ctx, w.rec)
		if err == nil {
			return written{write: w}
		}
		s.log.Warn("task update failed; retrying", append(taskFields(w.rec), zap.Error(err), zap.Duration("in", delay))...)
		timer := s.cfg.Clock.NewTimer(delay)
		select {
		case <-timer.C():
		case <-s.aborting:
			timer.Stop()
			return written{write: w, err: err}
		}
		delay = min(2*delay, writeRetryMax)
	}
}

// runnable reports why this service cannot run rec, if it cannot: the checks of Submit, for
// records that come from the store.
func (s *ProverService) runnable(rec paas.TaskRecord) error {
	if _, ok := s.handlers[rec.RoutingKey]; !ok {
		return fmt.Errorf("%w %q", paas.ErrNoHandler, rec.RoutingKey)
	}
	workers, ok := s.cfg.Workers[rec.Backend]
	if !ok {
		return fmt.Errorf("%w: %q", paas.ErrUnknownBackend, rec.Backend)
	}
	if rec.Weight < 1 || rec.Weight > workers {
		return fmt.Errorf("%w: weight %d, backend %q has capacity %d", paas.ErrInvalidWeight, rec.Weight, rec.Backend, workers)
	}
	return nil
}
