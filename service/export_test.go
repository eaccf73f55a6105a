package service

import (
	"context"

	"github.com/zkpaas/paas"
)

// InsertPending makes s, not started yet, insert every new task Pending, as it does those it
// cannot start at once: it then moves each to InProgress by a write of its own.
func InsertPending(s *ProverService) { s.insertPending = true }

// Stopping lets tests wait until Stop has begun.
func Stopping(s *ProverService) <-chan struct{} { return s.stopping }

// Waiters returns how many Wait calls are registered on task id, as the loop sees it.
func Waiters(h ProverHandle, id paas.TaskID) int {
	n := make(chan int, 1)
	if err := h.s.deliver(context.Background(), func(c *core) {
		if t, ok := c.tasks[id]; ok {
			n <- len(t.get().waiters)
			return
		}
		n <- 0
	}); err != nil {
		return -1
	}
	return <-n
}

// status returns a cached task's status; ok is false if the task is not cached, or held
// for a Retry whose write is in flight. Status itself reads the store.
func (c *core) status(id paas.TaskID) (st paas.TaskStatus, ok bool) {
	t, ok := c.tasks[id]
	if !ok || t.get().retryAck != nil {
		// Not held, or held for a Retry's write in flight, whose record may be stale: the
		// store has what is true until the write commits.
		return paas.TaskStatus{}, false
	}
	return t.record().Status(), true
}
