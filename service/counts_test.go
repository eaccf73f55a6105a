package service

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/zkpaas/paas"
)

// A Summary taken while the loop moves tasks never sees one counted twice or not at all.
func TestSummaryIsWholeWhileTasksMove(t *testing.T) {
	k := &counts{}
	const tasks = 10
	for range tasks {
		k.move(0, paas.Pending)
	}
	done := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				s := k.summary()
				total := s.Pending + s.InProgress + s.Completed
				if !assert.Equal(t, tasks, total, "%+v", s) {
					return
				}
			}
		})
	}
	for range 20_000 {
		k.move(paas.Pending, paas.InProgress)
		k.move(paas.InProgress, paas.Completed)
		k.move(paas.Completed, paas.Pending)
	}
	close(done)
	readers.Wait()
	assert.Equal(t, paas.StatusSummary{Pending: tasks}, k.summary())
}
