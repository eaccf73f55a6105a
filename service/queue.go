package service

import "slices"

// taskQueue holds the Pending tasks of one backend, highest priority first, then in submission
// (Seq) order. A task that comes back from a retry takes its original place, ahead of tasks of
// its priority submitted after it.
//
// Cancelling a queued task only clears its queued flag; the entry is dropped when it reaches
// the head, which keeps removal O(1) without an index into the queue.
//
// Most tasks arrive in order: new ones, of a handful of priorities, each after the last of its
// priority. Those go to a FIFO run of their priority, and push and pop cost O(1), reading
// memory in order however long the backlog. The others (retries, which come back among newer
// tasks, and priorities beyond the first few) go to a binary heap of entries that carry the
// fields that order them, so that sifting compares entries in place. The head of the queue is
// the first of the heads of the runs and of the heap.
type taskQueue struct {
	runs []run // by priority, highest first
	heap []entry
}

// run is the tasks of one priority pushed in Seq order; they are tasks[head:].
type run struct {
	priority int
	tasks    []*task
	head     int
}

type entry struct {
	priority int
	seq      uint64
	task     *task
}

// maxRuns bounds the priorities that get a run of their own; further ones go to the heap.
const maxRuns = 8

// before reports whether a comes out of the queue before b.
func (a entry) before(b entry) bool {
	if a.priority != b.priority {
		return a.priority > b.priority
	}
	return a.seq < b.seq
}

func entryOf(t *task) entry { return entry{priority: t.rec.Priority, seq: t.rec.Seq, task: t} }

func (q *taskQueue) push(t *task) {
	t.queued = true
	if q.append(t) {
		return
	}
	q.heap = append(q.heap, entryOf(t))
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

// append adds t to the run of its priority if it comes after every task in it, making the run
// if there is room for one; it reports whether it did.
func (q *taskQueue) append(t *task) bool {
	p := t.rec.Priority
	i := 0
	for i < len(q.runs) && q.runs[i].priority > p {
		i++
	}
	if i == len(q.runs) || q.runs[i].priority != p {
		if len(q.runs) == maxRuns {
			// An empty run makes room: priorities come and go.
			e := slices.IndexFunc(q.runs, func(r run) bool { return r.head == len(r.tasks) })
			if e < 0 {
				return false
			}
			q.runs = slices.Delete(q.runs, e, e+1)
			if e < i {
				i--
			}
		}
		q.runs = append(q.runs, run{})
		copy(q.runs[i+1:], q.runs[i:])
		q.runs[i] = run{priority: p}
	}
	r := &q.runs[i]
	if n := len(r.tasks); n > r.head && r.tasks[n-1].rec.Seq > t.rec.Seq {
		return false
	}
	if r.head == len(r.tasks) {
		r.tasks, r.head = r.tasks[:0], 0
	} else if r.head >= 1024 && r.head >= len(r.tasks)/2 {
		// Reuse the space of the tasks gone, so that a run which never empties stays the
		// size of its backlog; moved in O(1) a push, amortized.
		n := copy(r.tasks, r.tasks[r.head:])
		clear(r.tasks[n:])
		r.tasks, r.head = r.tasks[:n], 0
	}
	r.tasks = append(r.tasks, t)
	return true
}

// peek returns the first task still queued, dropping stale entries on the way.
func (q *taskQueue) peek() *task {
	t, _ := q.first()
	return t
}

// first returns the first task still queued, and the run it heads, or -1 if the heap's head.
func (q *taskQueue) first() (*task, int) {
	for len(q.heap) > 0 && !q.heap[0].task.queued {
		q.drop()
	}
	var best *task
	from := -1
	if len(q.heap) > 0 {
		best = q.heap[0].task
	}
	for i := range q.runs {
		r := &q.runs[i]
		for r.head < len(r.tasks) && !r.tasks[r.head].queued {
			r.tasks[r.head] = nil // let the task be collected once it is done
			r.head++
		}
		if r.head == len(r.tasks) {
			continue
		}
		// Runs are by priority: the first one with a task is the best of them.
		if t := r.tasks[r.head]; best == nil || entryOf(t).before(entryOf(best)) {
			best, from = t, i
		}
		break
	}
	return best, from
}

func (q *taskQueue) pop() *task {
	t, from := q.first()
	switch {
	case t == nil:
		return nil
	case from < 0:
		q.drop()
	default:
		r := &q.runs[from]
		r.tasks[r.head] = nil
		r.head++
	}
	t.queued = false
	return t
}

// drop removes the head of the heap.
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
