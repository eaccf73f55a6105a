package service

import (
	"context"
	"fmt"

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
// the task's state, and so do concurrent duplicate submits.
//
// Submit refuses, storing nothing, a backend without workers (paas.ErrUnknownBackend), a
// routing key without a handler (paas.ErrNoHandler), a program the Codec cannot encode
// (paas.ErrEncodeProgram), and a weight below 1 or above the backend's capacity
// (paas.ErrInvalidWeight). An error of the store's is returned as it is, and the task does not
// exist.
func (h ProverHandle) Submit(ctx context.Context, program paas.ProgramType, backend paas.Backend) (paas.TaskID, error) {
	rec, err := h.s.newRecord(program, backend)
	if err != nil {
		return paas.TaskID{}, err
	}
	reply := make(chan submitReply, 1)
	if err := h.send(ctx, func(st *state) { st.submit(rec, reply) }); err != nil {
		return paas.TaskID{}, err
	}
	r, err := receive(ctx, h.s, reply)
	if err != nil {
		return paas.TaskID{}, err
	}
	return r.id, r.err
}

func (s *ProverService) newRecord(program paas.ProgramType, backend paas.Backend) (paas.TaskRecord, error) {
	if program == nil {
		return paas.TaskRecord{}, fmt.Errorf("%w: nil program", paas.ErrEncodeProgram)
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
		State:      paas.Pending,
		CreatedAt:  now,
		UpdatedAt:  now,
	}
	return rec, s.runnable(rec)
}

// Execute submits a task like Submit and waits for its final state like Wait.
func (h ProverHandle) Execute(ctx context.Context, program paas.ProgramType, backend paas.Backend) (paas.TaskResult, error) {
	id, err := h.Submit(ctx, program, backend)
	if err != nil {
		return paas.TaskResult{}, err
	}
	return h.Wait(ctx, id)
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
