package service

import (
	"context"

	"github.com/zkpaas/paas"
)

// Stopping lets tests wait until Stop has begun.
func Stopping(s *ProverService) <-chan struct{} { return s.stopping }

// Waiters returns how many Wait calls are registered on task id, as the loop sees it.
func Waiters(h ProverHandle, id paas.TaskID) int {
	n := make(chan int, 1)
	if err := h.s.deliver(context.Background(), func(c *core) {
		if t, ok := c.tasks[id]; ok {
			n <- len(t.waiters)
			return
		}
		n <- 0
	}); err != nil {
		return -1
	}
	return <-n
}
