package service

import "container/heap"

// taskQueue holds the Pending tasks of one backend, highest priority first, then in submission
// (Seq) order. A task that comes back from a retry takes its original place, ahead of tasks of
// its priority submitted after it.
//
// Cancelling a queued task only clears its queued flag; the entry is dropped when it reaches
// the head, which keeps removal O(1) without an index into the heap.
type taskQueue struct{ tasks []*task }

func (q *taskQueue) push(t *task) {
	t.queued = true
	heap.Push((*seqHeap)(&q.tasks), t)
}

// peek returns the first task still queued, dropping stale entries on the way.
func (q *taskQueue) peek() *task {
	for len(q.tasks) > 0 {
		if t := q.tasks[0]; t.queued {
			return t
		}
		heap.Pop((*seqHeap)(&q.tasks))
	}
	return nil
}

func (q *taskQueue) pop() *task {
	t := q.peek()
	if t != nil {
		heap.Pop((*seqHeap)(&q.tasks))
		t.queued = false
	}
	return t
}

type seqHeap []*task

func (h seqHeap) Len() int { return len(h) }
func (h seqHeap) Less(i, j int) bool {
	if a, b := h[i].rec.Priority, h[j].rec.Priority; a != b {
		return a > b
	}
	return h[i].rec.Seq < h[j].rec.Seq
}
func (h seqHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *seqHeap) Push(x any)   { *h = append(*h, x.(*task)) }
func (h *seqHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil // let the task be collected once it is done
	*h = old[:len(old)-1]
	return t
}
