package service

// taskQueue holds the Pending tasks of one backend, highest priority first, then in submission
// (Seq) order. A task that comes back from a retry takes its original place, ahead of tasks of
// its priority submitted after it.
//
// Cancelling a queued task only clears its queued flag; the entry is dropped when it reaches
// the head, which keeps removal O(1) without an index into the heap.
//
// It is a binary heap of entries that carry the fields that order them, so that sifting a
// large queue compares entries in place instead of reading every task it passes, and pushing
// allocates nothing once the heap has grown.
type taskQueue struct{ heap []entry }

type entry struct {
	priority int
	seq      uint64
	task     *task
}

// before reports whether a comes out of the queue before b.
func (a entry) before(b entry) bool {
	if a.priority != b.priority {
		return a.priority > b.priority
	}
	return a.seq < b.seq
}

func (q *taskQueue) push(t *task) {
	t.queued = true
	q.heap = append(q.heap, entry{priority: t.rec.Priority, seq: t.rec.Seq, task: t})
	h := q.heap
	i := len(h) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !h[i].before(h[parent]) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
}

// peek returns the first task still queued, dropping stale entries on the way.
func (q *taskQueue) peek() *task {
	for len(q.heap) > 0 {
		if t := q.heap[0].task; t.queued {
			return t
		}
		q.drop()
	}
	return nil
}

func (q *taskQueue) pop() *task {
	t := q.peek()
	if t != nil {
		q.drop()
		t.queued = false
	}
	return t
}

// drop removes the head.
func (q *taskQueue) drop() {
	h := q.heap
	last := len(h) - 1
	h[0] = h[last]
	h[last] = entry{} // let the task be collected once it is done
	h = h[:last]
	q.heap = h
	i := 0
	for {
		first := i
		if l := 2*i + 1; l < len(h) && h[l].before(h[first]) {
			first = l
		}
		if r := 2*i + 2; r < len(h) && h[r].before(h[first]) {
			first = r
		}
		if first == i {
			return
		}
		h[i], h[first] = h[first], h[i]
		i = first
	}
}
