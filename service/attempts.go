package service

import (
	"context"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/internal/attempt"
	"github.com/zkpaas/paas/scheduler"
)

func (c *core) launch(t *task) {
	x := t.more()
	x.run, x.cancel = context.WithCancelCause(context.Background())
	c.running++
	timeout := t.rec.Timeout
	if timeout == 0 && !t.rec.NoTimeout {
		timeout = c.timeouts[t.rec.Backend]
	}
	x.deadline = time.Time{}
	if timeout > 0 {
		x.deadline = c.now().Add(timeout)
		c.schedule(t.rec.ID, x.deadline, dueDeadline)
	}
	c.starts = append(c.starts, start{ctx: x.run, task: paas.Task{
		ID:         t.rec.ID,
		RoutingKey: t.rec.RoutingKey,
		Backend:    t.rec.Backend,
		Program:    t.rec.Program,
		Attempt:    t.rec.Runs,
		DependsOn:  slices.Clone(x.dependsOn),
		Checkpoint: slices.Clone(x.checkpoint),
	}})
}

// dispatch moves the heads of the backend queues to InProgress while their backend has free
// capacity. Within a backend the head is the task of highest priority, the oldest first among
// equals, and it is strictly first: if it needs more capacity than is free, the tasks behind it
// wait too, even light ones that would fit. So a heavy task is never starved by a stream of
// light ones of its priority or below; only tasks of higher priority overtake it.
func (c *core) dispatch() {
	if c.stopping {
		return
	}
	for b, q := range c.queues {
		for t := q.peek(); t != nil; t = q.peek() {
			if !c.sems[b].TryAcquire(t.rec.Weight) {
				break
			}
			q.pop()
			c.propose(t, paas.InProgress, func(r *paas.TaskRecord) { r.Attempts++; r.Runs++ })
		}
	}
}

// handlerDone records the outcome of an attempt: err is what the handler returned.
func (c *core) handlerDone(id paas.TaskID, err error) {
	t := c.tasks[id]
	c.running--
	// Why the service cancelled the handler, if it did, decides over what the handler
	// returned; the cause is read here, in the loop that alone cancels.
	x := t.x
	cause := context.Cause(x.run)
	x.cancel(nil) // release the context's resources
	x.run, x.cancel = nil, nil
	c.sems[t.rec.Backend].Release(t.rec.Weight)
	rec := t.record()
	v := attempt.Judge(err, cause, rec, c.retry, c.now(), c.maxInputWait)
	if v.Next == paas.Failed || v.Next == paas.Retrying {
		c.log.Warn("attempt failed", append(taskFields(rec), zap.Error(err), zap.Stringer("next", v.Next))...)
	}
	if t.writing {
		done := v
		x.done = &done // a checkpoint is being written: one write at a time
		return
	}
	c.settleAttempt(t, v)
}

func (c *core) settleAttempt(t *task, v attempt.Verdict) {
	c.propose(t, v.Next, func(r *paas.TaskRecord) {
		if v.Refund {
			r.Attempts--
		}
		if v.Restart {
			r.Restarts++
			r.Checkpoint = nil
		}
		if v.Interrupted {
			r.Interruptions++
		}
		if v.LastErr != "" {
			r.LastError = v.LastErr
		}
		if v.Waiting && r.WaitingSince.IsZero() {
			r.WaitingSince = r.UpdatedAt
		}
		r.NextAttemptAt = time.Time{}
		if v.Next == paas.Retrying || v.Next == paas.Blocked {
			r.NextAttemptAt = r.UpdatedAt.Add(v.Delay)
		}
	})
}

// due handles a scheduler entry whose time has come.
func (c *core) due(d scheduler.Due) {
	if d.Kind == dueRewrite {
		c.rewriteDue()
		return
	}
	t, ok := c.tasks[d.ID]
	if !ok {
		return // ended
	}
	switch d.Kind {
	case dueAttempt:
		st := t.rec.State
		if c.stopping || t.writing || (st != paas.Retrying && st != paas.Blocked) || !t.get().nextAttemptAt.Equal(d.At) {
			return // left for the next start, or stale: cancelled or rescheduled
		}
		c.propose(t, paas.Pending, func(r *paas.TaskRecord) { r.NextAttemptAt = time.Time{} })
	case dueDeadline:
		if t.running() && t.x.deadline.Equal(d.At) {
			t.x.cancel(attempt.ErrTimedOut)
		}
	}
}
