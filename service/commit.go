package service

import (
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/zkpaas/paas"
)

// commit applies the store's answer to a write.
func (s *core) commit(w written) {
	s.inflight--
	if w.Insert {
		s.inserted(w)
		return
	}
	t := s.tasks[w.Record.ID]
	if w.err != nil {
		// A Retry is a decision not yet taken, refused like an insert; other updates record
		// what has happened, and are written again.
		if s.rewrites.retryable(w.err) && !s.aborted && t.retryAck == nil {
			s.rewrite(w.Write)
			return
		}
		t.writing = false
		s.dropUnstored(t, w)
		return
	}
	t.writing = false
	s.rewrites.succeeded()
	if t.retryAck != nil {
		t.retryAck <- nil
		t.retryAck = nil
		for _, a := range t.laterRetries {
			a <- fmt.Errorf("%w: task %s was put back by another Retry", paas.ErrNotRetryable, t.rec.ID)
		}
		t.laterRetries = nil
		if !t.counted {
			s.counts[slot(t.rec.State)]++ // for the move out of it below
		}
		delete(s.finished, t.rec.ID)
	}
	if t.saveAck != nil {
		t.saveAck <- nil
		t.saveAck = nil
	}
	if t.cancel != nil {
		// A checkpoint of a running task: nothing else changes.
		t.rec = w.Record
		return
	}
	s.counts[slot(t.rec.State)]--
	s.counts[slot(w.Record.State)]++
	t.rec = w.Record
	s.debug("task "+w.Record.State.String(), w.Record)
	s.settle(t)
}

// dropUnstored gives up on a task whose write the writer gave up on, which it does only when
// the store is closed, the task is gone from it, or Stop stopped waiting. The store still holds
// the previous state, which the next start resumes from; until then the task is left alone.
func (s *core) dropUnstored(t *task, w written) {
	if t.retryAck != nil {
		// A Retry decided on a record read from the store, which did not take: the store
		// keeps the task as it is, and the service holds nothing of it. If it changed since
		// it was read (another Retry), the Retry comes second. Those who found it held
		// meanwhile read it again.
		err := w.err
		if errors.Is(err, paas.ErrConflict) {
			err = errReread
		} else {
			s.log.Error("task retry not persisted", append(taskFields(w.Record), zap.Error(w.err))...)
		}
		t.retryAck <- err
		t.retryAck = nil
		for _, a := range t.laterRetries {
			a <- errResolve // decide again, on the record they read
		}
		for _, w := range t.waiters {
			w <- outcome{err: errReread}
		}
		for _, a := range t.cancelAcks {
			a <- errReread
		}
		s.forget(t)
		return
	}
	s.log.Error("task state not persisted", append(taskFields(w.Record), zap.Error(w.err))...)
	if t.rec.State == paas.Pending && w.Record.State == paas.InProgress {
		s.sems[t.rec.Backend].Release(t.rec.Weight)
	}
	err := fmt.Errorf("paas: task %s: moving it to %s was not stored: %w", t.rec.ID, w.Record.State, w.err)
	if t.saveAck != nil {
		t.saveAck <- err
		t.saveAck = nil
		if t.cancel != nil {
			return // the handler runs on; its outcome will be written, or fail, on its own
		}
	}
	for _, w := range t.waiters {
		w <- outcome{err: err}
	}
	for _, a := range t.cancelAcks {
		a <- err
	}
	s.counts[slot(t.rec.State)]--
	s.forget(t)
}

func (s *core) inserted(w written) {
	in := s.inserts[w.Record.Key]
	delete(s.inserts, w.Record.Key)
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
		t.rec = w.Record
		s.adopt(t)
		s.debug("task submitted", t.rec)
		s.settle(t)
	}
	if reply.err != nil || reply.id != proposed {
		t.gone = true // its dependencies may still list it
	}
	for _, r := range in.replies {
		r <- reply
	}
}

// finish answers everyone waiting on a task that reached a final state, tells its dependents,
// and drops it from the cache: from now on the store alone knows it.
func (s *core) finish(t *task) {
	s.finished[t.rec.ID] = struct{}{}
	res := t.rec.Result()
	for _, w := range t.waiters {
		w <- outcome{res: res}
	}
	// The first Cancel to be answered made the task Cancelled; any other came second.
	for _, a := range t.cancelAcks {
		if t.rec.State == paas.Cancelled && !t.cancelled {
			t.cancelled = true
			a <- nil
		} else {
			a <- paas.ErrTaskFinished
		}
	}
	s.forget(t)
	for _, d := range s.dependents[t.rec.ID] {
		if d.gone {
			continue
		}
		if t.rec.State == paas.Completed {
			d.deps--
		} else if d.failedDep.IsZero() {
			d.failedDep, d.failedDepState = t.rec.ID, t.rec.State
		}
		// A task not yet inserted, or with a write in flight, settles when that commits.
		if !d.writing && s.tasks[d.rec.ID] == d {
			s.settle(d)
		}
	}
	delete(s.dependents, t.rec.ID)
}
