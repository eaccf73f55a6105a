package scheduler_test

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/clock"
	"github.com/zkpaas/paas/scheduler"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is an arbitrary start time, far from the zero time and from the wall clock.
var t0 = time.Date(2030, time.January, 2, 3, 4, 5, 6, time.UTC)

// safetyNet bounds every wait in a test; it is never meant to expire.
const safetyNet = 10 * time.Second

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), safetyNet)
	t.Cleanup(cancel)
	return ctx
}

// newScheduler returns a scheduler on a fake clock at t0, with Run started. When the test ends,
// Run's context is canceled and the test waits for Run to return context.Canceled.
func newScheduler(t *testing.T) (*scheduler.RetryScheduler, *clock.Fake) {
	t.Helper()
	fake := clock.NewFake(t0)
	s := scheduler.New(fake)
	start(t, s)
	return s, fake
}

// start runs s.Run until the test ends.
func start(t *testing.T, s *scheduler.RetryScheduler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			assert.ErrorIs(t, err, context.Canceled, "Run returns ctx.Err()")
		case <-time.After(safetyNet):
			t.Error("Run did not return after its context was canceled")
		}
	})
}

// receive returns the next delivered entry, failing the test if none comes before ctx ends.
func receive(ctx context.Context, t *testing.T, s *scheduler.RetryScheduler) scheduler.Due {
	t.Helper()
	select {
	case d := <-s.Due():
		return d
	case <-ctx.Done():
		require.FailNow(t, "no entry was delivered")
		return scheduler.Due{}
	}
}

// requireNothingDelivered fails if an entry is ready on Due right now.
func requireNothingDelivered(t *testing.T, s *scheduler.RetryScheduler) {
	t.Helper()
	select {
	case d := <-s.Due():
		require.Failf(t, "entry delivered early", "got %v due at %v, fake time is still before it", d.ID, d.At)
	default:
	}
}

// settle returns once the scheduler has demonstrably looked at its heap at the current fake time
// and gone back to sleep on a timer for what is left: it hands over a sentinel due now, then
// re-arms. Its timer is never armed while it delivers, so the armed timer WaitForTimers then
// sees is armed afresh, after the look. Entries must remain, or there is no timer to arm.
func settle(ctx context.Context, t *testing.T, s *scheduler.RetryScheduler, fake *clock.Fake) {
	t.Helper()
	sentinel := paas.NewTaskID()
	s.Schedule(scheduler.Due{ID: sentinel, At: fake.Now()})
	require.Equal(t, sentinel, receive(ctx, t, s).ID)
	require.NoError(t, fake.WaitForTimers(ctx, 1))
}

func TestAScheduledEntryIsDeliveredWhenTheClockReachesItsDueTimeAndNotBefore(t *testing.T) {
	ctx := testContext(t)
	s, fake := newScheduler(t)
	id := paas.NewTaskID()
	const d = 10 * time.Second
	s.Schedule(scheduler.Due{ID: id, At: t0.Add(d)})

	require.NoError(t, fake.WaitForTimers(ctx, 1))
	fake.Advance(d - time.Nanosecond)
	settle(ctx, t, s, fake) // the scheduler saw the entry was not yet due, and sleeps again
	requireNothingDelivered(t, s)
	assert.Equal(t, 1, s.Len())

	fake.Advance(time.Nanosecond)
	got := receive(ctx, t, s)
	assert.Equal(t, scheduler.Due{ID: id, At: t0.Add(d)}, got)
	assert.Equal(t, 0, s.Len())
}

func TestEntriesComeOutInDueTimeOrderWhenScheduledOutOfOrder(t *testing.T) {
	ctx := testContext(t)
	s, fake := newScheduler(t)

	offsets := []time.Duration{5, 1, 4, 2, 3} // seconds after t0, in scheduling order
	ids := make(map[time.Duration]paas.TaskID)
	for _, o := range offsets {
		ids[o] = paas.NewTaskID()
		s.Schedule(scheduler.Due{ID: ids[o], At: t0.Add(o * time.Second)})
	}

	// One step at a time: each Advance makes exactly the next entry due.
	for o := time.Duration(1); o <= 5; o++ {
		require.NoError(t, fake.WaitForTimers(ctx, 1))
		fake.Advance(time.Second)
		got := receive(ctx, t, s)
		assert.Equal(t, scheduler.Due{ID: ids[o], At: t0.Add(o * time.Second)}, got)
	}
	assert.Equal(t, 0, s.Len())
}

func TestEntriesThatBecomeDueTogetherComeOutInDueTimeOrder(t *testing.T) {
	ctx := testContext(t)
	s, fake := newScheduler(t)
	rng := rand.New(rand.NewPCG(1, 2))

	const n = 200
	var want []time.Time
	for range n {
		at := t0.Add(time.Duration(rng.IntN(1_000_000)+1) * time.Millisecond)
		want = append(want, at)
		s.Schedule(scheduler.Due{ID: paas.NewTaskID(), At: at})
	}
	slices.SortFunc(want, time.Time.Compare)

	fake.Advance(time.Hour) // past all of them at once
	var got []time.Time
	for range n {
		got = append(got, receive(ctx, t, s).At)
	}
	assert.Equal(t, want, got)
}

func TestAnEntryDueInThePastIsDeliveredWithoutAnyAdvance(t *testing.T) {
	ctx := testContext(t)
	s, fake := newScheduler(t)
	past, now := paas.NewTaskID(), paas.NewTaskID()

	s.Schedule(scheduler.Due{ID: past, At: t0.Add(-time.Hour)})
	assert.Equal(t, scheduler.Due{ID: past, At: t0.Add(-time.Hour)}, receive(ctx, t, s))

	s.Schedule(scheduler.Due{ID: now, At: t0}) // due exactly now counts as due
	assert.Equal(t, scheduler.Due{ID: now, At: t0}, receive(ctx, t, s))

	assert.Equal(t, t0, fake.Now())
}

func TestScheduleOfAnEarlierTimeReArmsASchedulerSleepingOnALaterOne(t *testing.T) {
	ctx := testContext(t)
	s, fake := newScheduler(t)
	early, late := paas.NewTaskID(), paas.NewTaskID()

	s.Schedule(scheduler.Due{ID: late, At: t0.Add(time.Hour)})
	require.NoError(t, fake.WaitForTimers(ctx, 1)) // asleep until t0+1h
	s.Schedule(scheduler.Due{ID: early, At: t0.Add(time.Second)})
	require.NoError(t, fake.WaitForTimers(ctx, 1))

	// Had the scheduler kept sleeping on t0+1h, nothing would arrive now.
	fake.Advance(time.Second)
	assert.Equal(t, scheduler.Due{ID: early, At: t0.Add(time.Second)}, receive(ctx, t, s))
	require.NoError(t, fake.WaitForTimers(ctx, 1))
	requireNothingDelivered(t, s)
	assert.Equal(t, 1, s.Len())

	fake.Advance(time.Hour - time.Second)
	assert.Equal(t, scheduler.Due{ID: late, At: t0.Add(time.Hour)}, receive(ctx, t, s))
}

func TestManyWaitingEntriesShareOneTimerAndNoGoroutines(t *testing.T) {
	ctx := testContext(t)
	s, fake := newScheduler(t)
	rng := rand.New(rand.NewPCG(3, 4))
	goroutines := runtime.NumGoroutine() // with Run already started

	const n = 100_000
	maxTimers := 0
	for i := range n {
		s.Schedule(scheduler.Due{ID: paas.NewTaskID(), At: t0.Add(time.Duration(rng.IntN(1_000_000)+1) * time.Millisecond)})
		if i%100 == 0 {
			maxTimers = max(maxTimers, fake.Timers())
		}
	}
	settle(ctx, t, s, fake) // asleep until the earliest of them
	maxTimers = max(maxTimers, fake.Timers())

	assert.Equal(t, 1, maxTimers, "entries waiting share one timer")
	assert.LessOrEqual(t, runtime.NumGoroutine(), goroutines+2, "goroutines do not grow with the entries")
	assert.Equal(t, n, s.Len())
	requireNothingDelivered(t, s)
}

func TestDueCarriesTheTimeTheEntryWasScheduledForNotTheTimeItWasDelivered(t *testing.T) {
	ctx := testContext(t)
	s, fake := newScheduler(t)
	id := paas.NewTaskID()
	at := t0.Add(time.Second)
	s.Schedule(scheduler.Due{ID: id, At: at, Kind: 7})

	require.NoError(t, fake.WaitForTimers(ctx, 1))
	fake.Advance(time.Minute)
	got := receive(ctx, t, s)
	assert.Equal(t, id, got.ID)
	assert.Equal(t, at, got.At)
	assert.Equal(t, scheduler.Kind(7), got.Kind, "the kind is handed back as given")
}

func TestAStaleEntryIsDeliveredAlongsideTheNewOneWithItsOwnAt(t *testing.T) {
	ctx := testContext(t)
	s, fake := newScheduler(t)
	id := paas.NewTaskID()
	s.Schedule(scheduler.Due{ID: id, At: t0.Add(2 * time.Second)})
	s.Schedule(scheduler.Due{ID: id, At: t0.Add(time.Second)}) // rescheduled earlier; the first entry is now stale
	assert.Equal(t, 2, s.Len())

	fake.Advance(2 * time.Second)
	assert.Equal(t, scheduler.Due{ID: id, At: t0.Add(time.Second)}, receive(ctx, t, s))
	assert.Equal(t, scheduler.Due{ID: id, At: t0.Add(2 * time.Second)}, receive(ctx, t, s))
}

func TestScheduleNeverBlocksWhileTheSchedulerIsBlockedDeliveringAnEntryNobodyReads(t *testing.T) {
	ctx := testContext(t)
	s, fake := newScheduler(t)

	first, blocked := paas.NewTaskID(), paas.NewTaskID()
	s.Schedule(scheduler.Due{ID: first, At: t0.Add(-2 * time.Second)})
	s.Schedule(scheduler.Due{ID: blocked, At: t0.Add(-time.Second)})
	assert.Equal(t, first, receive(ctx, t, s).ID)
	// The scheduler now goes straight on to hand over blocked, which nobody reads yet: it pops it
	// and blocks on the send. All the Schedule calls below happen around or during that send.

	const n = 1000
	ids := make([]paas.TaskID, n)
	for i := range n {
		ids[i] = paas.NewTaskID()
		s.Schedule(scheduler.Due{ID: ids[i], At: t0.Add(time.Duration(n-i) * time.Millisecond)}) // latest first
	}

	assert.Equal(t, scheduler.Due{ID: blocked, At: t0.Add(-time.Second)}, receive(ctx, t, s))
	assert.Equal(t, n, s.Len(), "every Schedule made during the blocked send was kept")

	fake.Advance(time.Second)
	for i := n - 1; i >= 0; i-- {
		assert.Equal(t, scheduler.Due{ID: ids[i], At: t0.Add(time.Duration(n-i) * time.Millisecond)}, receive(ctx, t, s))
	}
	assert.Equal(t, 0, s.Len())
}

func TestRunReturnsTheContextErrorWhenItsContextEnds(t *testing.T) {
	ctx := testContext(t)

	t.Run("while idle", func(t *testing.T) {
		s := scheduler.New(clock.NewFake(t0))
		runCtx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- s.Run(runCtx) }()
		s.Schedule(scheduler.Due{ID: paas.NewTaskID(), At: t0})
		receive(ctx, t, s) // Run is going, and now has nothing left to do
		cancel()
		select {
		case err := <-errc:
			assert.ErrorIs(t, err, context.Canceled)
		case <-ctx.Done():
			require.FailNow(t, "Run did not return")
		}
	})

	t.Run("while sleeping on a timer", func(t *testing.T) {
		fake := clock.NewFake(t0)
		s := scheduler.New(fake)
		s.Schedule(scheduler.Due{ID: paas.NewTaskID(), At: t0.Add(time.Hour)})
		runCtx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- s.Run(runCtx) }()
		require.NoError(t, fake.WaitForTimers(ctx, 1))
		cancel()
		select {
		case err := <-errc:
			assert.ErrorIs(t, err, context.Canceled)
		case <-ctx.Done():
			require.FailNow(t, "Run did not return")
		}
		assert.Equal(t, 1, s.Len(), "the waiting entry stays in the heap")
	})

	t.Run("while blocked delivering", func(t *testing.T) {
		s := scheduler.New(clock.NewFake(t0))
		s.Schedule(scheduler.Due{ID: paas.NewTaskID(), At: t0.Add(-2 * time.Second)})
		s.Schedule(scheduler.Due{ID: paas.NewTaskID(), At: t0.Add(-time.Second)}) // due too; nobody reads it
		runCtx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- s.Run(runCtx) }()
		receive(ctx, t, s) // Run goes straight on to hand over the second, and blocks there
		cancel()
		select {
		case err := <-errc:
			assert.ErrorIs(t, err, context.Canceled)
		case <-ctx.Done():
			require.FailNow(t, "Run did not return")
		}
	})

	t.Run("with a deadline, returning DeadlineExceeded", func(t *testing.T) {
		s := scheduler.New(clock.NewFake(t0))
		expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- s.Run(expired) }()
		select {
		case err := <-errc:
			assert.ErrorIs(t, err, context.DeadlineExceeded)
		case <-ctx.Done():
			require.FailNow(t, "Run did not return")
		}
	})
}

func TestLenCountsWaitingEntriesIncludingStaleOnes(t *testing.T) {
	ctx := testContext(t)
	fake := clock.NewFake(t0)
	s := scheduler.New(fake)
	assert.Equal(t, 0, s.Len())

	id := paas.NewTaskID()
	s.Schedule(scheduler.Due{ID: id, At: t0.Add(time.Second)})
	s.Schedule(scheduler.Due{ID: id, At: t0.Add(2 * time.Second)}) // same task again: both entries count
	s.Schedule(scheduler.Due{ID: paas.NewTaskID(), At: t0.Add(3 * time.Second)})
	assert.Equal(t, 3, s.Len(), "Schedule without Run still records entries")

	start(t, s)
	require.NoError(t, fake.WaitForTimers(ctx, 1))
	fake.Advance(time.Second)
	receive(ctx, t, s)
	assert.Equal(t, 2, s.Len(), "a delivered entry no longer counts")
}

// A test that waits for a fake clock's timers must see only timers that stand for due times.
func TestAnIdleSchedulerArmsNoTimer(t *testing.T) {
	ctx := testContext(t)
	fake := clock.NewFake(t0)
	s := scheduler.New(fake)
	armed, watched := make(chan struct{}), make(chan struct{})
	watch, stopWatching := context.WithCancel(ctx)
	go func() {
		defer close(watched)
		// Any timer armed while Run starts up would be seen here.
		if fake.WaitForTimers(watch, 1) == nil {
			close(armed)
		}
	}()
	defer func() { stopWatching(); <-watched }()
	start(t, s)
	s.Schedule(scheduler.Due{ID: paas.NewTaskID(), At: t0}) // due now: proves Run is running
	receive(ctx, t, s)
	assert.Equal(t, 0, fake.Timers())
	select {
	case <-armed:
		t.Fatal("the scheduler armed a timer with nothing to wait for")
	default:
	}
}
