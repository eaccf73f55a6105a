package service

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"

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
	batches := make(chan []paas.Write)
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
		s.closeDone()
	}()

	stopping, aborting := s.stopping, s.aborting
	writerBusy := false
	var inWriter, spare []paas.Write
	for {
		st.dispatch()
		s.carryOut(st, sched, &workers)
		if st.stopping && st.idle() {
			return
		}
		// Backpressure without flags: the send case exists only when there is something to send
		// and the writer is free to take it.
		var toWriter chan<- []paas.Write
		if len(st.writes) > 0 && !writerBusy {
			s.gather(st)
			toWriter = batches
		}
		select {
		case cmd := <-s.cmds:
			cmd(st)
		case toWriter <- st.writes:
			// The writer owns the batch until it answers; the next one fills the spare.
			inWriter, st.writes, spare = st.writes, spare, nil
			writerBusy = true
		case ws := <-s.results:
			writerBusy = false
			// The answers hold copies: the batch is free again, and is kept rather than
			// let the next one grow from nothing.
			clear(inWriter)
			spare, inWriter = inWriter[:0], nil
			for _, w := range ws {
				st.commit(w)
			}
		case e := <-s.ended:
			st.handlerDone(e.id, e.err)
		case d := <-sched.Due():
			st.due(d)
		case <-stopping:
			st.stop()
			stopping = nil
		case <-aborting:
			// Stop closes both at once, and the loop may take this one first: stop intake
			// and dispatch here too, so that nothing starts after the interruption.
			st.stop()
			stopping = nil
			st.interrupt()
			aborting = nil
		}
	}
}

// gather lets the callers that the last commit answered send their next commands, and takes
// them, before a batch goes to the writer. Without it the first caller to come back would
// leave alone in a batch of one while the others queue for the next, and batches would
// alternate small and large. It costs a yield of the processor, not a wait.
func (s *ProverService) gather(st *state) {
	runtime.Gosched()
	for range maxGather {
		select {
		case cmd := <-s.cmds:
			cmd(st)
		default:
			return
		}
	}
}

// maxGather bounds how many commands gather takes, so that a flood of commands cannot hold a
// batch back for long.
const maxGather = 1024

// carryOut empties the outboxes of st other than writes: it sets timers and launches handlers.
func (s *ProverService) carryOut(st *state, sched *scheduler.RetryScheduler, workers *sync.WaitGroup) {
	for _, d := range st.timers {
		sched.Schedule(d)
	}
	st.timers = st.timers[:0]
	for _, job := range st.starts {
		h := s.handlers[job.task.RoutingKey]
		task := job.task
		task.SaveCheckpoint = func(ctx context.Context, checkpoint []byte) error {
			return s.saveCheckpoint(ctx, task.ID, task.Attempt, checkpoint)
		}
		ctx := paas.ContextWithTask(job.ctx, task)
		s.active.Add(1)
		workers.Go(func() {
			err := prove(ctx, h, task)
			s.active.Add(-1)
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

// write persists batches from the loop and sends back the store's answers. A batch is every
// write that piled up while the previous one was being committed; a BatchStore commits it in
// one transaction (group commit), so a busy service pays one sync to disk for many writes.
func (s *ProverService) write(ctx context.Context, batches <-chan []paas.Write) {
	for {
		select {
		case batch := <-batches:
			res := s.persist(batch)
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

// persist writes a batch once and returns the store's answers. Inserts that failed go back to
// their submitters, and the task does not exist; updates that failed go back to the loop,
// which writes them again after a backoff (see rewrites), so that the writer is never held up
// by a store that fails.
func (s *ProverService) persist(batch []paas.Write) []written {
	res := s.apply(batch)
	out := make([]written, len(batch))
	for i, w := range batch {
		out[i] = written{Write: w, err: res[i].Err}
		if w.Insert && res[i].Err == nil {
			out[i].Record = res[i].Record
		}
	}
	return out
}

// apply writes ws through the store: in one transaction if it is a BatchStore.
func (s *ProverService) apply(ws []paas.Write) []paas.WriteResult {
	// Store calls are not bound to Stop's ctx: a task interrupted by Stop must still be written
	// back to Pending.
	ctx := context.Background()
	if bs, ok := s.store.(paas.BatchStore); ok {
		res := bs.WriteBatch(ctx, ws)
		if len(res) != len(ws) {
			err := fmt.Errorf("paas: store answered %d of %d writes", len(res), len(ws))
			res = make([]paas.WriteResult, len(ws))
			for i := range res {
				res[i].Err = err
			}
		}
		return res
	}
	res := make([]paas.WriteResult, len(ws))
	for i, w := range ws {
		if w.Insert {
			res[i].Record, res[i].Err = s.store.Insert(ctx, w.Record)
		} else {
			res[i].Err = s.store.Update(ctx, w.Record)
		}
	}
	return res
}

// saveCheckpoint is Task.SaveCheckpoint: it persists a checkpoint through the loop, which
// writes it like any change of the task, and returns once it is stored.
func (s *ProverService) saveCheckpoint(ctx context.Context, id paas.TaskID, attempt int, checkpoint []byte) error {
	ack := make(chan error, 1)
	data := slices.Clone(checkpoint)
	if err := s.deliver(ctx, func(st *state) { st.saveCheckpoint(id, attempt, data, ack) }); err != nil {
		return err
	}
	err, rerr := receive(ctx, s, ack)
	if rerr != nil {
		return rerr
	}
	return err
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
