package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/zkpaas/paas"
)

// ProverHandle submits tasks to a ProverService and observes them. It is a small value, safe
// for concurrent use. Every method returns paas.ErrNotStarted before the service is started,
// paas.ErrStopped once it is stopping, and ctx.Err() if ctx ends first; none of them waits on
// a handler or blocks the service.
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
// *paas.DependencyError), and a task that would depend on itself (paas.ErrDependencyCycle). An
// error of the store's is returned as it is, and the task does not exist.
func (h ProverHandle) Submit(ctx context.Context, program paas.ProgramType, backend paas.Backend, opts ...paas.SubmitOption) (paas.TaskID, error) {
	rec, err := h.s.newRecord(program, backend, opts)
	if err != nil {
		return paas.TaskID{}, err
	}
	r, err := resolving(ctx, h.s, rec.DependsOn, func(unfinished []paas.TaskID) (submitReply, error) {
		reply := make(chan submitReply, 1)
		if err := h.send(ctx, func(st *state) { st.submit(rec, unfinished, reply) }); err != nil {
			return submitReply{}, err
		}
		r, err := receive(ctx, h.s, reply)
		if err == nil && r.err != nil {
			err = r.err
		}
		return r, err
	})
	return r.id, err
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

func (s *ProverService) newRecord(program paas.ProgramType, backend paas.Backend, opts []paas.SubmitOption) (paas.TaskRecord, error) {
	if program == nil {
		return paas.TaskRecord{}, fmt.Errorf("%w: nil program", paas.ErrEncodeProgram)
	}
	var o paas.SubmitOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.Timeout < 0 {
		return paas.TaskRecord{}, fmt.Errorf("%w: timeout %s, want >= 0", paas.ErrInvalidOption, o.Timeout)
	}
	deps := make([]paas.TaskID, 0, len(o.DependsOn))
	for _, dep := range o.DependsOn {
		if dep.IsZero() {
			return paas.TaskRecord{}, fmt.Errorf("%w: the zero task id", paas.ErrUnknownDependency)
		}
		if !slices.Contains(deps, dep) {
			deps = append(deps, dep)
		}
	}
	encoded, err := s.cfg.Codec.Marshal(program)
	if err != nil {
		return paas.TaskRecord{}, fmt.Errorf("%w: %T: %w", paas.ErrEncodeProgram, program, err)
	}
	now := s.cfg.Clock.Now()
	rk := program.RoutingKey()
	rec := paas.TaskRecord{
		ID:         paas.NewTaskID(),
		Key:        paas.KeyOf(rk, encoded, backend),
		RoutingKey: rk,
		Backend:    backend,
		Program:    encoded,
		Weight:     paas.WeightOf(program),
		Priority:   o.Priority,
		Timeout:    o.Timeout,
		State:      paas.Pending,
		CreatedAt:  now,
		UpdatedAt:  now,
	}
	if len(deps) > 0 {
		rec.DependsOn = deps
	}
	return rec, s.runnable(rec)
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
// have not completed. It returns an error wrapping paas.ErrNotRetryable for a task in another
// state, and one wrapping paas.ErrTaskNotFound for an unknown id.
func (h ProverHandle) Retry(ctx context.Context, id paas.TaskID) error {
	rec, err := h.s.store.Get(ctx, id)
	if err != nil {
		return err
	}
	if rec.State != paas.Failed && rec.State != paas.Cancelled {
		return fmt.Errorf("%w: task %s is %s", paas.ErrNotRetryable, id, rec.State)
	}
	if err := h.s.runnable(rec); err != nil {
		return fmt.Errorf("paas: retry task %s: %w", id, err)
	}
	// A dependency that failed is retried too, or this task fails again at once.
	_, err = resolving(ctx, h.s, rec.DependsOn, func(unfinished []paas.TaskID) (struct{}, error) {
		ack := make(chan error, 1)
		if err := h.send(ctx, func(st *state) { st.revive(rec, unfinished, ack) }); err != nil {
			return struct{}{}, err
		}
		err, rerr := receive(ctx, h.s, ack)
		if rerr != nil {
			return struct{}{}, rerr
		}
		return struct{}{}, err
	})
	return err
}

// Prune deletes the tasks that reached a final state more than olderThan ago, so that the
// store does not grow forever, and returns how many it deleted. It never deletes an unfinished
// task. A pruned task is forgotten: submitting its program again makes a new task and proves
// it again. Proofs are the handler's, and are not deleted.
func (h ProverHandle) Prune(ctx context.Context, olderThan time.Duration) (int, error) {
	select {
	case <-h.s.started:
	default:
		return 0, paas.ErrNotStarted
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
	res := make(chan outcome, 1)
	cached := make(chan bool, 1)
	if err := h.send(ctx, func(st *state) { cached <- st.wait(id, res) }); err != nil {
		return paas.TaskResult{}, err
	}
	ok, err := receive(ctx, h.s, cached)
	if err != nil {
		return paas.TaskResult{}, err
	}
	if !ok {
		return h.stored(ctx, id)
	}
	r, err := receive(ctx, h.s, res)
	if err != nil {
		// Forget the waiter so that callers who give up do not pile up on a long task.
		_ = h.send(context.Background(), func(st *state) { st.unwait(id, res) })
		return paas.TaskResult{}, err
	}
	return r.res, r.err
}

// stored returns the result of a task that the service no longer holds.
func (h ProverHandle) stored(ctx context.Context, id paas.TaskID) (paas.TaskResult, error) {
	rec, err := h.s.store.Get(ctx, id)
	if err != nil {
		return paas.TaskResult{}, err
	}
	if !rec.State.Final() {
		return paas.TaskResult{}, fmt.Errorf("paas: task %s is %s in the store but not run by this service", id, rec.State)
	}
	return rec.Result(), nil
}

// Status returns a snapshot of task id, or an error wrapping paas.ErrTaskNotFound.
func (h ProverHandle) Status(ctx context.Context, id paas.TaskID) (paas.TaskStatus, error) {
	type reply struct {
		status paas.TaskStatus
		ok     bool
	}
	c := make(chan reply, 1)
	if err := h.send(ctx, func(st *state) {
		status, ok := st.status(id)
		c <- reply{status, ok}
	}); err != nil {
		return paas.TaskStatus{}, err
	}
	r, err := receive(ctx, h.s, c)
	if err != nil || r.ok {
		return r.status, err
	}
	// Not held by the service: finished, or unknown. The service drops a task only after its
	// final state is stored, so the store's answer is current.
	rec, err := h.s.store.Get(ctx, id)
	if err != nil {
		return paas.TaskStatus{}, err
	}
	return rec.Status(), nil
}

// Summary returns how many tasks are in each state. It is kept up to date as tasks move, so a
// call costs the same however many tasks there are.
func (h ProverHandle) Summary(ctx context.Context) (paas.StatusSummary, error) {
	c := make(chan paas.StatusSummary, 1)
	if err := h.send(ctx, func(st *state) { c <- st.summary() }); err != nil {
		return paas.StatusSummary{}, err
	}
	return receive(ctx, h.s, c)
}

// Cancel cancels task id. A Pending or Retrying task is Cancelled when Cancel returns. A
// running task has its handler's context cancelled, and becomes Cancelled when the handler
// returns (or Completed, if the handler returns success anyway: the proof exists). Cancelling a
// task in a final state changes nothing and returns an error wrapping paas.ErrTaskFinished;
// an unknown id gives an error wrapping paas.ErrTaskNotFound.
func (h ProverHandle) Cancel(ctx context.Context, id paas.TaskID) error {
	ack := make(chan error, 1)
	cached := make(chan bool, 1)
	if err := h.send(ctx, func(st *state) { cached <- st.cancel(id, ack) }); err != nil {
		return err
	}
	ok, err := receive(ctx, h.s, cached)
	if err != nil {
		return err
	}
	if ok {
		if err, rerr := receive(ctx, h.s, ack); rerr != nil {
			return rerr
		} else if err != nil {
			return fmt.Errorf("cancel task %s: %w", id, err)
		}
		return nil
	}
	rec, err := h.s.store.Get(ctx, id)
	if err != nil {
		return err
	}
	if !rec.State.Final() {
		return fmt.Errorf("paas: task %s is %s in the store but not run by this service", id, rec.State)
	}
	return fmt.Errorf("cancel task %s (%s): %w", id, rec.State, paas.ErrTaskFinished)
}

// send hands cmd to the service loop.
func (h ProverHandle) send(ctx context.Context, cmd command) error {
	s := h.s
	select {
	case <-s.started:
	default:
		return paas.ErrNotStarted
	}
	select {
	case <-s.stopping:
		return paas.ErrStopped
	default:
	}
	return s.deliver(ctx, cmd)
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
