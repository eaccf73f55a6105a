package main

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
)

// barePool is the baseline of the end-to-end figure: what a node would write without paas.
// Producers send tasks on a channel to one dispatcher, which runs each in a goroutine of its
// own under a semaphore of the same capacity as the service's workers. Nothing is stored.
func barePool(producers, tasks int, capacity int64, work func()) time.Duration {
	ch := make(chan int)
	sem := semaphore.NewWeighted(capacity)
	var running sync.WaitGroup
	start := time.Now()
	var prod sync.WaitGroup
	per := tasks / producers
	for p := range producers {
		prod.Go(func() {
			for i := range per {
				ch <- p*per + i
			}
		})
	}
	var dispatcher sync.WaitGroup
	dispatcher.Go(func() {
		for range ch {
			_ = sem.Acquire(context.Background(), 1)
			running.Go(func() {
				defer sem.Release(1)
				work()
			})
		}
		running.Wait()
	})
	prod.Wait()
	close(ch)
	dispatcher.Wait()
	return time.Since(start)
}
