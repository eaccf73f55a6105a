package service

import (
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/scheduler"
)

// Backoff between attempts to write again updates that failed.
const (
	writeRetryBase = 10 * time.Millisecond
	writeRetryMax  = 5 * time.Second
)

// rewrites holds the updates that the store failed, to be written again after a backoff. An
// update records a change that has already happened (a handler ran, a retry is due), so it
// cannot be refused the way a Submit is; but it waits here, in the loop's state, rather than
// in the writer, so that while the store fails (a full disk) the writer still takes new
// batches: each Submit is answered with the store's error at once instead of queueing behind
// the updates, and the updates go out again with the next batch once their backoff is due.
type rewrites struct {
	writes []paas.Write
	armed  bool          // a dueRewrite entry is scheduled
	delay  time.Duration // before the next round; doubles while writes keep failing
}

// retryable reports whether an update that failed with err may succeed if written again: not
// if the store is closed, has lost the task, or holds a newer version of it.
func (*rewrites) retryable(err error) bool {
	return !errors.Is(err, paas.ErrStoreClosed) && !errors.Is(err, paas.ErrTaskNotFound) && !errors.Is(err, paas.ErrConflict)
}

// succeeded resets the backoff: the store writes again.
func (r *rewrites) succeeded() { r.delay = writeRetryBase }

// rewrite keeps w, an update that failed, to be written again once the backoff is due. Its task
// stays writing, and the write in flight, meanwhile.
func (c *core) rewrite(w paas.Write) {
	c.inflight++
	r := &c.rewrites
	r.writes = append(r.writes, w)
	if r.armed {
		return
	}
	r.armed = true
	c.log.Warn("task updates failed; writing them again", append(taskFields(w.Record), zap.Duration("in", r.delay))...)
	c.timers = append(c.timers, scheduler.Due{At: c.now().Add(r.delay), Kind: dueRewrite})
}

// rewriteDue sends the failed updates to the writer again.
func (c *core) rewriteDue() {
	r := &c.rewrites
	r.armed = false
	c.writes = append(c.writes, r.writes...)
	clear(r.writes)
	r.writes = r.writes[:0]
	r.delay = min(2*r.delay, writeRetryMax)
}

// giveUpRewrites drops the updates waiting to be written again, as Stop does once its ctx has
// ended: the store keeps each task's previous state, which the next start resumes from.
func (c *core) giveUpRewrites() {
	r := &c.rewrites
	for _, w := range r.writes {
		c.inflight--
		t := c.tasks[w.Record.ID]
		t.writing = false
		c.dropUnstored(t, written{Write: w, err: errGaveUp})
	}
	clear(r.writes)
	r.writes = r.writes[:0]
}

// errGaveUp is the error of an update that Stop gave up writing.
var errGaveUp = errors.New("the store kept failing and Stop stopped waiting")
