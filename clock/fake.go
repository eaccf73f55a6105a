package clock

import (
	"context"
	"sync"
	"time"
)

// Fake is a Clock whose time moves only by Advance. Timers fire when Advance reaches their
// deadline. Tests use WaitForTimers to know that the code under test has armed a timer before
// they advance, instead of sleeping. The zero value is not usable; call NewFake.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	timers  map[*fakeTimer]struct{} // active timers
	changed chan struct{}           // closed and replaced whenever the set of timers changes
}

// NewFake returns a Fake clock set to now.
func NewFake(now time.Time) *Fake {
	return &Fake{now: now, timers: make(map[*fakeTimer]struct{}), changed: make(chan struct{})}
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer returns a timer that fires once Advance has moved the clock d past now.
func (f *Fake) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{clock: f, c: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// Advance moves the clock forward by d and fires every timer whose deadline is reached.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	for t := range f.timers {
		if !t.deadline.After(f.now) {
			f.fireLocked(t)
		}
	}
}

// Timers returns how many timers are armed and not yet fired.
func (f *Fake) Timers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// WaitForTimers blocks until at least n timers are armed, or ctx ends.
func (f *Fake) WaitForTimers(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		armed, changed := len(f.timers), f.changed
		f.mu.Unlock()
		if armed >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *Fake) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *Fake) fireLocked(t *fakeTimer) {
	delete(f.timers, t)
	// c has room for one value; like time.Timer, a timer that fires again before being read
	// keeps only the first.
	select {
	case t.c <- f.now:
	default:
	}
	f.notifyLocked()
}

type fakeTimer struct {
	clock    *Fake
	c        chan time.Time
	deadline time.Time // guarded by clock.mu
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	f := t.clock
	f.mu.Lock()
	defer f.mu.Unlock()
	active := t.disarmLocked()
	if active {
		f.notifyLocked()
	}
	return active
}

// disarmLocked stops t and drops a value sent but not received, as time.Timer does since Go
// 1.23; it reports whether t was armed or had such a value, as time.Timer's Stop and Reset do.
func (t *fakeTimer) disarmLocked() bool {
	_, active := t.clock.timers[t]
	delete(t.clock.timers, t)
	select {
	case <-t.c:
		active = true
	default:
	}
	return active
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	f := t.clock
	f.mu.Lock()
	defer f.mu.Unlock()
	active := t.disarmLocked()
	t.deadline = f.now.Add(d)
	if d <= 0 {
		f.fireLocked(t)
		return active
	}
	f.timers[t] = struct{}{}
	f.notifyLocked()
	return active
}
