// Package scheduler holds the RetryScheduler: it remembers when each entry is due (a retrying
// task's next attempt, a task's next look at its input, the deadline of an attempt, a failed
// write's next try) and hands the entry back once its time has come. The file scheduler.go
// holds all of it.
package scheduler

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/clock"
)

// Kind says what an entry was scheduled for. The scheduler hands it back as given; its
// values are the receiver's.
type Kind uint8

// Due is an entry whose time has come.
type Due struct {
	ID paas.TaskID
	// At is the due time it was scheduled for. A receiver compares it with the task's current
	// due time to drop entries that a later Schedule or a Cancel made stale.
	At time.Time
	// Kind is handed back as given: it tells the receiver what it scheduled the entry for
	// (a retry, a deadline).
	Kind Kind
}

// RetryScheduler runs one goroutine with one timer over a heap of due times, however many tasks
// wait: waiting tasks cost a heap entry, not a goroutine or a timer each.
//
// Schedule may be called from any goroutine and never blocks on the scheduler's goroutine, so
// the service loop can schedule while the scheduler is blocked handing it a due task.
type RetryScheduler struct {
	clock clock.Clock
	out   chan Due

	mu      sync.Mutex
	entries dueHeap // guarded by mu

	// wake tells Run that the earliest due time may have changed. One pending signal is enough,
	// as Run re-reads the heap each time it wakes, so a buffer of 1 never loses a wake-up.
	wake chan struct{}
}

// dueBuffer is how many due entries Run hands over before the receiver takes the first: many
// falling due at once go out without a hand-off each.
const dueBuffer = 1024

// New returns a RetryScheduler driven by c. Call Run to start it.
func New(c clock.Clock) *RetryScheduler {
	return &RetryScheduler{clock: c, out: make(chan Due, dueBuffer), wake: make(chan struct{}, 1)}
}

// Schedule asks for d to be handed back on Due() once the clock reaches d.At.
func (s *RetryScheduler) Schedule(d Due) {
	s.mu.Lock()
	heap.Push(&s.entries, d)
	// Run's timer is set for the earliest entry: only a new earliest one needs it woken.
	earliest := s.entries[0] == d
	s.mu.Unlock()
	if !earliest {
		return
	}
	select {
	case s.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// Len returns how many entries wait, stale ones included.
func (s *RetryScheduler) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entries.Len()
}

// Due delivers tasks whose time has come, in due-time order.
func (s *RetryScheduler) Due() <-chan Due { return s.out }

// Run hands due tasks to Due() until ctx ends. It returns ctx.Err(). Entries still waiting
// stay in the heap; the service reloads due times from its store on the next start.
func (s *RetryScheduler) Run(ctx context.Context) error {
	// The timer is made when first needed, so that an idle scheduler arms none: tests that
	// wait for a fake clock's timers see only the ones that stand for due times.
	var timer clock.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		next, ok := s.popDue()
		if ok {
			select {
			case s.out <- next:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		// Nothing due: sleep until the earliest entry, or until Schedule wakes us.
		timerC := (<-chan time.Time)(nil)
		if at, ok := s.earliest(); ok {
			if d := at.Sub(s.clock.Now()); timer == nil {
				timer = s.clock.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			timerC = timer.C()
		}
		select {
		case <-timerC:
		case <-s.wake:
			if timer != nil {
				timer.Stop()
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// popDue removes and returns the earliest entry if it is due.
func (s *RetryScheduler) popDue() (Due, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries.Len() == 0 || s.entries[0].At.After(s.clock.Now()) {
		return Due{}, false
	}
	return heap.Pop(&s.entries).(Due), true
}

func (s *RetryScheduler) earliest() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries.Len() == 0 {
		return time.Time{}, false
	}
	return s.entries[0].At, true
}

// dueHeap is a min-heap of entries by due time.
type dueHeap []Due

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].At.Before(h[j].At) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(Due)) }
func (h *dueHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	*h = old[:len(old)-1]
	return d
}
