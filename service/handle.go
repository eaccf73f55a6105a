package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zkpaas/paas"
)

// ProverHandle submits tasks to a ProverService and observes them. It is a small value, safe
// for concurrent use. Every method checks the service's lifecycle first: it returns
// paas.ErrNotStarted before the service is started and paas.ErrStopped once it is stopping,
// whatever its arguments; and it returns ctx.Err() if ctx ends first. None of them waits on a
// handler or blocks the service.
type ProverHandle struct{ s *ProverService }

// Submit stores a task that proves program on backend and returns its id once the task is
// durable. A task is identified by its program's encoding, routing key and backend: submitting
// the same program to the same backend again returns the same id and starts nothing, whatever
// the task's state and whatever options the second Submit gives, and so do concurrent
// duplicate submits. Options set dependencies (paas.After), a priority (paas.Priority) and a
// timeout per attempt (paas.Timeout).
//
// Submit refuses, storing nothing, a backend without workers (paas.ErrUnknownBackend), a
// routing key without a handler (paas.ErrNoHandler), a program the Codec cannot encode
// (paas.ErrEncodeProgram), a weight below 1 or above the backend's capacity
// (paas.ErrInvalidWeight), a negative timeout (paas.ErrInvalidOption), a dependency that is no
// task (paas.ErrUnknownDependency) or that has already failed or been cancelled (a
// *paas.DependencyError). Identity is decided first: a Submit of an existing task returns its
// id whatever its options say, even options that would be refused for a new task. An error of
// the store's is returned as it is, and the task does not exist.
//
// A Submit whose ctx ends before it returns may still have stored its task. Submitting the
// same program again is safe, and tells: it returns the task's id if it was stored, and
// stores it now if it was not.
func (h ProverHandle) Submit(ctx context.Context, program paas.ProgramType, backend paas.Backend, opts ...paas.SubmitOption) (paas.TaskID, error) {
	if err := h.s.live(); err != nil {
		return paas.TaskID{}, err
	}
	rec, optErr, err := h.s.newRecord(program, backend, opts)
	if err != nil {
		return paas.TaskID{}, err
	}
	submit := func(unfinished []paas.TaskID, resolved bool) (paas.TaskID, error) {
		reply := make(chan submitReply, 1)
		if err := h.send(ctx, func(c *core) { c.submit(rec, unfinished, resolved, reply) }); err != nil {
			return paas.TaskID{}, err
		}
		r, err := receive(ctx, h.s, reply)
		if err == nil && r.err != nil {
			err = r.err
		}
		return r.id, err
	}
	id, err := submit(nil, optErr == nil && len(rec.DependsOn) == 0)
	if !errors.Is(err, errResolve) {
		return id, err
	}
	// New to the service, and with options to check: a task finished in the store is the
	// answer whatever the options; otherwise they must be valid, and the dependencies exist
	// and not have failed.
	if existing, err := h.s.store.GetByKey(ctx, rec.Key); err == nil {
		return existing.ID, nil
	} else if !errors.Is(err, paas.ErrTaskNotFound) {
		return paas.TaskID{}, fmt.Errorf("paas: look up task: %w", err)
	}
	if optErr != nil {
		return paas.TaskID{}, optErr
	}
	id, err = resolving(ctx, h.s, rec.DependsOn, func(unfinished []paas.TaskID) (paas.TaskID, error) {
		return submit(unfinished, true)
	})
	if _, ok := errors.AsType[*paas.DependencyError](err); ok {
		err = fmt.Errorf("%w: %w", paas.ErrInvalidTask, err) // a refusal like any other
	}
	return id, err
}

// resolving reads deps from the store and calls step with those still unfinished; the others
// must have Completed. It calls step again if the loop finds that some of them have ended
// meanwhile: their final state is in the store by then, so this ends.
func resolving[T any](ctx context.Context, s *ProverService, deps []paas.TaskID, step func(unfinished []paas.TaskID) (T, error)) (T, error) {
	for {
		var unfinished []paas.TaskID
		for _, dep := range deps {
			rec, err := s.store.Get(ctx, dep)
			switch {
			case errors.Is(err, paas.ErrTaskNotFound):
				var zero T
				return zero, fmt.Errorf("%w: %s", paas.ErrUnknownDependency, dep)
			case err != nil:
				var zero T
				return zero, fmt.Errorf("paas: read dependency %s: %w", dep, err)
			case rec.State == paas.Failed || rec.State == paas.Cancelled:
				var zero T
				return zero, &paas.DependencyError{ID: dep, State: rec.State}
			case rec.State != paas.Completed:
				unfinished = append(unfinished, dep)
			}
		}
		r, err := step(unfinished)
		if !errors.Is(err, errResolve) {
			return r, err
		}
	}
}

// Execute submits a task like Submit and waits for its final state like Wait.
func (h ProverHandle) Execute(ctx context.Context, program paas.ProgramType, backend paas.Backend, opts ...paas.SubmitOption) (paas.TaskResult, error) {
	id, err := h.Submit(ctx, program, backend, opts...)
	if err != nil {
		return paas.TaskResult{}, err
	}
	return h.Wait(ctx, id)
}

// Retry puts a Failed or Cancelled task back to work with a fresh budget: no attempts, no
// restarts, no checkpoint, no last error. It waits again for those of its dependencies that
// have not completed. It returns once the change is stored, so the task runs again even if the
// process crashes right after. It returns an error wrapping paas.ErrNotRetryable for a task in
// another state, and one wrapping paas.ErrTaskNotFound for an unknown id. Of two Retries of one
// task at once, one puts it back and the other returns an error wrapping paas.ErrNotRetryable:
// the change is applied only to the record it was decided on, so a Retry never overwrites what
// happened to the task meanwhile, and never runs it a second time. A store that fails the
// change makes Retry return its error, and the task stays as it was. Prune keeps only the
// dependencies of unfinished tasks, so a dependency of a Failed task may have been pruned
// since: Retry then refuses it with paas.ErrUnknownDependency.
func (h ProverHandle) Retry(ctx context.Context, id paas.TaskID) error {
	if err := h.s.live(); err != nil {
		return err
	}
	rec, err := h.s.store.Get(ctx, id)
	if err != nil {
		return err
	}
	if rec.State != paas.Failed && rec.State != paas.Cancelled {
		return fmt.Errorf("%w: task %s is %s", paas.ErrNotRetryable, id, rec.State)
	}
	if err := h.s.runnable(rec); err != nil {
		return fmt.Errorf("%w: retry task %s: %w", paas.ErrNotRunHere, id, err)
	}
	// A dependency that failed is retried too, or this task fails again at once.
	_, err = resolving(ctx, h.s, rec.DependsOn, func(unfinished []paas.TaskID) (struct{}, error) {
		ack := make(chan error, 1)
		if err := h.send(ctx, func(c *core) { c.revive(rec, unfinished, ack) }); err != nil {
			return struct{}{}, err
		}
		err, rerr := receive(ctx, h.s, ack)
		if rerr != nil {
			return struct{}{}, rerr
		}
		return struct{}{}, err
	})
	if errors.Is(err, errReread) {
		return fmt.Errorf("%w: task %s was put back by another Retry since it was read: %w", paas.ErrNotRetryable, id, paas.ErrConflict)
	}
	if err != nil && !errors.Is(err, paas.ErrStopped) && ctx.Err() == nil {
		return fmt.Errorf("paas: retry task %s: %w", id, err)
	}
	return err
}

// Prune deletes the tasks that reached a final state more than olderThan ago, so that the
// store does not grow forever, and returns how many it deleted. It never deletes an unfinished
// task. A pruned task is forgotten: submitting its program again makes a new task and proves
// it again. Proofs are the handler's, and are not deleted.
func (h ProverHandle) Prune(ctx context.Context, olderThan time.Duration) (int, error) {
	if err := h.s.live(); err != nil {
		return 0, err
	}
	if olderThan < 0 {
		return 0, fmt.Errorf("%w: prune older than %s, want >= 0", paas.ErrInvalidOption, olderThan)
	}
	return h.s.store.Prune(ctx, h.s.cfg.Clock.Now().Add(-olderThan))
}

// Wait waits until task id reaches a final state and returns its result: the error is about
// the waiting (paas.ErrTaskNotFound, ctx.Err(), paas.ErrStopped, or a store that failed to
// record the outcome), not about the task, whose outcome is in the result (see TaskResult.Err). It is told of the outcome, it does not poll.
// If ctx ends first, the task goes on.
func (h ProverHandle) Wait(ctx context.Context, id paas.TaskID) (paas.TaskResult, error) {
	if err := h.s.live(); err != nil {
		return paas.TaskResult{}, err
	}
	// A task final in the store has its result there: the loop need not be asked.
	if rec, err := h.s.store.Get(ctx, id); err == nil && rec.State.Final() {
		return rec.Result(), nil
	}
	for {
		res := make(chan outcome, 1)
		rec, err := h.cachedOrStored(ctx, id, func(c *core) bool { return c.wait(id, res) })
		if err != nil || !rec.ID.IsZero() {
			return rec.Result(), err
		}
		r, err := receive(ctx, h.s, res)
		if err != nil {
			// Forget the waiter so that callers who give up do not pile up on a long task.
			_ = h.send(context.Background(), func(c *core) { c.unwait(id, res) })
			return paas.TaskResult{}, err
		}
		if !errors.Is(r.err, errReread) {
			return r.res, r.err
		}
	}
}

// cachedOrStored runs step, on the loop, on a task that the service holds, and returns the
// zero record; step reports whether it does. If it does not, the task is finished, and its
// record, read from the store, is returned. A task found unfinished in the store was put
// back meanwhile by a Retry, and so is held by the service now: step is run again. Only a
// task found unfinished twice at one version is not run by this service at all.
func (h ProverHandle) cachedOrStored(ctx context.Context, id paas.TaskID, step func(*core) bool) (paas.TaskRecord, error) {
	seen := uint64(0)
	for {
		cached := make(chan bool, 1)
		if err := h.send(ctx, func(c *core) { cached <- step(c) }); err != nil {
			return paas.TaskRecord{}, err
		}
		ok, err := receive(ctx, h.s, cached)
		if err != nil || ok {
			return paas.TaskRecord{}, err
		}
		rec, err := h.s.store.Get(ctx, id)
		switch {
		case err != nil:
			return paas.TaskRecord{}, err
		case rec.State.Final():
			return rec, nil
		case seen != 0 && seen == rec.Version+1:
			return paas.TaskRecord{}, fmt.Errorf("%w: task %s is %s in the store", paas.ErrNotRunHere, id, rec.State)
		}
		seen = rec.Version + 1
	}
}

// Status returns a snapshot of task id, or an error wrapping paas.ErrTaskNotFound. It reads
// the store, which holds every change of the task that the service has made visible (the
// service acts on a change only once the store has it), and so does not wait for the
// service's loop, however busy.
func (h ProverHandle) Status(ctx context.Context, id paas.TaskID) (paas.TaskStatus, error) {
	if err := h.s.live(); err != nil {
		return paas.TaskStatus{}, err
	}
	rec, err := h.s.store.Get(ctx, id)
	if err != nil {
		return paas.TaskStatus{}, err
	}
	return rec.Status(), nil
}

// Summary returns how many tasks are in each state: the unfinished ones, and those that
// finished since the service started. It is kept up to date as tasks move, so a call costs
// the same however many tasks there are, and it does not wait for the service's loop.
func (h ProverHandle) Summary(ctx context.Context) (paas.StatusSummary, error) {
	if err := h.s.live(); err != nil {
		return paas.StatusSummary{}, err
	}
	if err := ctx.Err(); err != nil {
		return paas.StatusSummary{}, err
	}
	return h.s.counts.summary(), nil
}

// Cancel cancels task id. A Pending or Retrying task is Cancelled when Cancel returns. A
// running task has its handler's context cancelled, and becomes Cancelled when the handler
// returns (or Completed, if the handler returns success anyway: the proof exists). Cancelling a
// task in a final state changes nothing and returns an error wrapping paas.ErrTaskFinished, and
// so does the second of two Cancels of a waiting task; an unknown id gives an error wrapping
// paas.ErrTaskNotFound.
func (h ProverHandle) Cancel(ctx context.Context, id paas.TaskID) error {
	if err := h.s.live(); err != nil {
		return err
	}
	for {
		ack := make(chan error, 1)
		rec, err := h.cachedOrStored(ctx, id, func(c *core) bool { return c.cancel(id, ack) })
		switch {
		case err != nil:
			return err
		case !rec.ID.IsZero():
			return fmt.Errorf("paas: cancel task %s (%s): %w", id, rec.State, paas.ErrTaskFinished)
		}
		err, rerr := receive(ctx, h.s, ack)
		switch {
		case rerr != nil:
			return rerr
		case errors.Is(err, errReread):
			continue
		case err != nil:
			return fmt.Errorf("paas: cancel task %s: %w", id, err)
		}
		return nil
	}
}

// live returns why the handle must not be used now: the service is not started, or stopping.
func (s *ProverService) live() error {
	switch {
	case isClosed(s.stopping):
		return paas.ErrStopped
	case !isClosed(s.started):
		return paas.ErrNotStarted
	}
	return nil
}

// send hands cmd to the service loop.
func (h ProverHandle) send(ctx context.Context, cmd command) error {
	if err := h.s.live(); err != nil {
		return err
	}
	return h.s.deliver(ctx, cmd)
}

// deliver hands cmd to the service loop, even while it stops (for the handlers that still run).
func (s *ProverService) deliver(ctx context.Context, cmd command) error {
	select {
	case s.cmds <- cmd:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return paas.ErrStopped
	}
}

// receive waits for the loop's reply on c. Replies are buffered, so the loop never waits for
// a caller that left.
func receive[T any](ctx context.Context, s *ProverService, c <-chan T) (T, error) {
	select {
	case v := <-c:
		return v, nil
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	case <-s.done:
		// The reply may have been sent just before the loop left.
		select {
		case v := <-c:
			return v, nil
		default:
			var zero T
			return zero, paas.ErrStopped
		}
	}
}
