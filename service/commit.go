package service

import (
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/zkpaas/paas"
)

// commit applies the store's answer to a write.
func (c *core) commit(w written) {
	c.inflight--
	if w.Insert {
		c.inserted(w)
		return
	}
	t := c.tasks[w.Record.ID]
	if w.err != nil {
		// A Retry is a decision not yet taken, refused like an insert; other updates record
		// what has happened, and are written again.
		if c.rewrites.retryable(w.err) && !c.aborted && t.get().retryAck == nil {
			c.rewrite(w.Write)
			return
		}
		t.writing = false
		c.dropUnstored(t, w)
		return
	}
	t.writing = false
	c.rewrites.succeeded()
	if x := t.x; x != nil && x.retryAck != nil {
		x.retryAck <- nil
		x.retryAck = nil
		for _, a := range x.laterRetries {
			a <- fmt.Errorf("%w: task %s was put back by another Retry", paas.ErrNotRetryable, t.rec.ID)
		}
		x.laterRetries = nil
		if !t.counted {
			c.counts.move(0, t.rec.State) // for the move out of it below
		}
		delete(c.finished, t.rec.ID)
	}
	if x := t.x; x != nil && x.saveAck != nil {
		x.saveAck <- nil
		x.saveAck = nil
	}
	if t.running() {
		// A checkpoint of a running task: nothing else changes.
		t.set(w.Record)
		return
	}
	c.counts.move(t.rec.State, w.Record.State)
	t.set(w.Record)
	c.debug("", w.Record)
	c.settle(t)
}

// dropUnstored gives up on a task whose write the writer gave up on, which it does only when
// the store is closed, the task is gone from it, or Stop stopped waiting. The store still holds
// the previous state, which the next start resumes from; until then the task is left alone.
func (c *core) dropUnstored(t *task, w written) {
	x := t.get()
	if x.retryAck != nil {
		// A Retry decided on a record read from the store, which did not take: the store
		// keeps the task as it is, and the service holds nothing of it. If it changed since
		// it was read (another Retry), the Retry comes second. Those who found it held
		// meanwhile read it again.
		err := w.err
		if errors.Is(err, paas.ErrConflict) {
			err = errReread
		} else {
			c.log.Error("task retry not persisted", append(taskFields(w.Record), zap.Error(w.err))...)
		}
		x.retryAck <- err
		x.retryAck = nil
		for _, a := range x.laterRetries {
			a <- errResolve // decide again, on the record they read
		}
		for _, w := range x.waiters {
			w <- outcome{err: errReread}
		}
		for _, a := range x.cancelAcks {
			a <- errReread
		}
		c.forget(t)
		return
	}
	c.log.Error("task state not persisted", append(taskFields(w.Record), zap.Error(w.err))...)
	if t.rec.State == paas.Pending && w.Record.State == paas.InProgress {
		c.sems[t.rec.Backend].Release(t.rec.Weight)
	}
	err := fmt.Errorf("paas: task %s: moving it to %s was not stored: %w", t.rec.ID, w.Record.State, w.err)
	if x.saveAck != nil {
		x.saveAck <- err
		x.saveAck = nil
		if t.running() {
			return // the handler runs on; its outcome will be written, or fail, on its own
		}
	}
	for _, w := range x.waiters {
		w <- outcome{err: err}
	}
	for _, a := range x.cancelAcks {
		a <- err
	}
	c.counts.move(t.rec.State, 0)
	c.forget(t)
}

func (c *core) inserted(w written) {
	in := c.inserts[w.Record.Key]
	delete(c.inserts, w.Record.Key)
	t := in.task
	proposed := t.rec.ID
	var reply submitReply
	switch {
	case w.err != nil:
		reply.err = w.err
	case w.Record.ID != proposed:
		// The store had the key already: that task stands, this one was never created.
		reply.id = w.Record.ID
	default:
		reply.id = w.Record.ID
		t.set(w.Record)
		c.adopt(t)
		c.debug("task submitted", w.Record)
		c.settle(t)
	}
	if reply.err != nil || reply.id != proposed {
		t.gone = true // its dependencies may still list it
		if t.rec.State == paas.InProgress {
			c.sems[t.rec.Backend].Release(t.rec.Weight) // taken by startable
		}
	}
	for _, r := range in.replies {
		r <- reply
	}
}

// finish answers everyone waiting on a task that reached a final state, tells its dependents,
// and drops it from the cache: from now on the store alone knows it.
func (c *core) finish(t *task) {
	c.finished[t.rec.ID] = struct{}{}
	x := t.get()
	res := t.record().Result()
	for _, w := range x.waiters {
		w <- outcome{res: res}
	}
	// The first Cancel to be answered made the task Cancelled; any other came second.
	for _, a := range x.cancelAcks {
		if t.rec.State == paas.Cancelled && !x.cancelled {
			x.cancelled = true
			a <- nil
		} else {
			a <- paas.ErrTaskFinished
		}
	}
	c.forget(t)
	for _, d := range c.dependents[t.rec.ID] {
		if d.gone {
			continue
		}
		if t.rec.State == paas.Completed {
			d.deps--
		} else if d.get().failedDep.IsZero() {
			dx := d.more()
			dx.failedDep, dx.failedDepState = t.rec.ID, t.rec.State
		}
		// A task not yet inserted, or with a write in flight, settles when that commits.
		if !d.writing && c.tasks[d.rec.ID] == d {
			c.settle(d)
		}
	}
	delete(c.dependents, t.rec.ID)
}
