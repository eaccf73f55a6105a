package service

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/internal/attempt"
)

// submit asks for rec, a new task, to be stored, unless its key is known: identity is decided
// first, and a task that exists is the answer whatever rec's options. If resolved, unfinished
// lists the dependencies of rec that the submitter found unfinished in the store, the others
// having Completed; if not, a task new to the service is answered errResolve, for the
// submitter to look its key up in the store and check its options.
func (c *core) submit(rec paas.TaskRecord, unfinished []paas.TaskID, resolved bool, reply chan<- submitReply) {
	if c.stopping {
		reply <- submitReply{err: paas.ErrStopped}
		return
	}
	if t, ok := c.byKey[rec.Key]; ok {
		reply <- submitReply{id: t.rec.ID}
		return
	}
	if in, ok := c.inserts[rec.Key]; ok {
		in.replies = append(in.replies, reply)
		return
	}
	if !resolved {
		reply <- submitReply{err: errResolve}
		return
	}
	for _, dep := range unfinished {
		if c.tasks[dep] == nil {
			reply <- submitReply{err: errResolve}
			return
		}
	}
	t := &task{}
	for _, dep := range unfinished {
		c.await(t, dep)
	}
	switch {
	case t.deps > 0:
		rec.State = paas.Blocked
	case c.startable(rec):
		// It starts as it is stored: one write, and one wait for the store, sooner.
		rec.State = paas.InProgress
		rec.Attempts, rec.Runs = 1, 1
	default:
		rec.State = paas.Pending
	}
	t.set(rec)
	c.inserts[rec.Key] = &insertion{task: t, replies: []chan<- submitReply{reply}}
	c.inflight++
	c.writes = append(c.writes, paas.Write{Insert: true, Record: rec})
}

// startable reports whether a new task may be inserted InProgress, its first attempt begun,
// rather than Pending: nothing of its backend is queued before it, and it fits in the capacity
// free now, which it takes. The capacity is given back if the insert does not create the task.
func (c *core) startable(rec paas.TaskRecord) bool {
	return c.startOnInsert && c.queues[rec.Backend].peek() == nil && c.sems[rec.Backend].TryAcquire(rec.Weight)
}

// saveCheckpoint persists a checkpoint for the running attempt of task id.
func (c *core) saveCheckpoint(id paas.TaskID, attempt int, data []byte, ack chan<- error) {
	t, ok := c.tasks[id]
	switch {
	case !ok || !t.running() || t.rec.Runs != attempt:
		ack <- fmt.Errorf("%w: task %s: attempt %d is not running", paas.ErrCheckpointRefused, id, attempt)
		return
	case t.writing:
		ack <- fmt.Errorf("%w: task %s: a checkpoint is being saved already", paas.ErrCheckpointRefused, id)
		return
	}
	rec := c.queueWrite(t, t.record())
	rec.Checkpoint = data
	rec.UpdatedAt = c.now()
	t.x.saveAck = ack
}

// cancel cancels a cached task. ok is false if the task is not cached, in which case the store
// must be asked.
func (c *core) cancel(id paas.TaskID, ack chan<- error) (ok bool) {
	t, ok := c.tasks[id]
	if !ok {
		return false
	}
	switch {
	case t.running():
		// Running: the handler's context is cancelled; the task becomes Cancelled when the
		// handler returns.
		t.x.cancelReq = true
		t.x.cancel(attempt.ErrCancelled)
		t.x.cancelled = true
		ack <- nil
	case t.writing || t.get().cancelReq:
		x := t.more()
		x.cancelReq = true
		x.cancelAcks = append(x.cancelAcks, ack)
	default:
		t.queued = false
		x := t.more()
		x.cancelAcks = append(x.cancelAcks, ack)
		c.propose(t, paas.Cancelled, func(r *paas.TaskRecord) { r.NextAttemptAt = time.Time{} })
	}
	return true
}

// revive puts rec, a Failed or Cancelled task read from the store, back to work with a fresh
// budget. unfinished lists its dependencies that the caller found unfinished in the store. ack
// is answered once the change is stored; the write is fenced by rec's Version, so if the task
// has changed since rec was read, nothing is written and ack is answered errReread.
func (c *core) revive(rec paas.TaskRecord, unfinished []paas.TaskID, ack chan<- error) {
	switch {
	case c.stopping:
		ack <- paas.ErrStopped
		return
	case c.tasks[rec.ID] != nil && c.tasks[rec.ID].get().retryAck != nil:
		// Another Retry's write is in flight: this one comes after it, either way.
		x := c.tasks[rec.ID].x
		x.laterRetries = append(x.laterRetries, ack)
		return
	case c.tasks[rec.ID] != nil:
		ack <- fmt.Errorf("%w: task %s is not finished", paas.ErrNotRetryable, rec.ID)
		return
	}
	for _, dep := range unfinished {
		if c.tasks[dep] == nil {
			ack <- errResolve
			return
		}
	}
	// Held, so that other calls wait for the write, but not counted: rec may be stale. A task
	// that finished since the start is in the counts already, and the commit takes it out.
	t := newTask(rec)
	t.more().retryAck = ack
	c.tasks[rec.ID], c.byKey[rec.Key] = t, t
	_, t.counted = c.finished[rec.ID]
	for _, dep := range unfinished {
		c.await(t, dep)
	}
	next := paas.Pending
	if t.deps > 0 {
		next = paas.Blocked
	}
	c.propose(t, next, func(r *paas.TaskRecord) {
		r.LastError, r.FailedDependency = "", paas.TaskID{}
		r.Attempts, r.Restarts, r.Interruptions, r.Runs = 0, 0, 0, 0
		r.FailedDependencyState = 0
		r.NextAttemptAt, r.WaitingSince = time.Time{}, time.Time{}
		r.Checkpoint = nil
	})
}

// wait registers res to receive the result of a cached task; ok is false if it is not cached.
func (c *core) wait(id paas.TaskID, res chan<- outcome) (ok bool) {
	t, ok := c.tasks[id]
	if ok {
		x := t.more()
		x.waiters = append(x.waiters, res)
	}
	return ok
}

// unwait forgets a waiter that left.
func (c *core) unwait(id paas.TaskID, res chan<- outcome) {
	if t, ok := c.tasks[id]; ok && t.x != nil {
		t.x.waiters = slices.DeleteFunc(t.x.waiters, func(w chan<- outcome) bool { return w == res })
	}
}

// stop stops intake and dispatch. Running handlers go on; queued tasks stay Pending in the store.
func (c *core) stop() { c.stopping = true }

// interrupt cancels every running handler; each task goes back to Pending when its handler returns.
func (c *core) interrupt() {
	for _, t := range c.tasks {
		if t.running() {
			t.x.cancel(attempt.ErrInterrupted)
		}
	}
	c.aborted = true
	c.giveUpRewrites()
}

// saveCheckpoint is Task.SaveCheckpoint: it persists a checkpoint through the loop, which
// writes it like any change of the task, and returns once it is stored.
func (s *ProverService) saveCheckpoint(ctx context.Context, id paas.TaskID, attempt int, checkpoint []byte) error {
	ack := make(chan error, 1)
	data := slices.Clone(checkpoint)
	if err := s.deliver(ctx, func(c *core) { c.saveCheckpoint(id, attempt, data, ack) }); err != nil {
		return err
	}
	err, rerr := receive(ctx, s, ack)
	if rerr != nil {
		return rerr
	}
	return err
}

// summary answers Summary: the counts kept up to date as tasks move.
func (c *core) summary() paas.StatusSummary { return c.counts.summary() }
