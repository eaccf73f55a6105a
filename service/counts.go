package service

import (
	"sync/atomic"

	"github.com/zkpaas/paas"
)

// counts is how many tasks are in each state: for the final states, those that finished since
// the start and are still so. The loop alone changes it, as tasks move; Summary reads it from
// any goroutine without going through the loop, so that it answers at once however busy the
// loop is. A sequence lock keeps the reads whole: a reader never sees a task counted twice or
// not at all in the middle of a move.
type counts struct {
	seq atomic.Uint64 // odd while a move is being written
	n   [numStates]atomic.Int64
}

// move counts a task out of from and into to; either may be zero, for none.
func (k *counts) move(from, to paas.TaskState) {
	k.seq.Add(1)
	if from != 0 {
		k.n[slot(from)].Add(-1)
	}
	if to != 0 {
		k.n[slot(to)].Add(1)
	}
	k.seq.Add(1)
}

// summary returns the counts as one consistent snapshot.
func (k *counts) summary() paas.StatusSummary {
	var n [numStates]int
	for {
		before := k.seq.Load()
		if before%2 == 0 {
			for i := range n {
				n[i] = int(k.n[i].Load())
			}
			if k.seq.Load() == before {
				break
			}
		}
	}
	count := func(st paas.TaskState) int { return n[slot(st)] }
	return paas.StatusSummary{
		Blocked:    count(paas.Blocked),
		Pending:    count(paas.Pending),
		InProgress: count(paas.InProgress),
		Retrying:   count(paas.Retrying),
		Completed:  count(paas.Completed),
		Failed:     count(paas.Failed),
		Cancelled:  count(paas.Cancelled),
	}
}
