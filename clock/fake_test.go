package clock_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/zkpaas/paas/clock"
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

// requireEmpty fails unless c holds no value right now.
func requireEmpty(t *testing.T, c <-chan time.Time) {
	t.Helper()
	select {
	case v := <-c:
		require.Failf(t, "timer fired", "channel held %v", v)
	default:
	}
}

// requireFired fails unless c holds a value right now, and returns it. A fake timer sends while
// Advance, NewTimer or Reset holds the clock's lock, so the value is there as soon as they return.
func requireFired(t *testing.T, c <-chan time.Time) time.Time {
	t.Helper()
	select {
	case v := <-c:
		return v
	default:
		require.FailNow(t, "timer did not fire")
		return time.Time{}
	}
}

func TestFakeNowStartsAtTheGivenTimeAndMovesOnlyByAdvance(t *testing.T) {
	f := clock.NewFake(t0)
	assert.Equal(t, t0, f.Now())
	assert.Equal(t, t0, f.Now(), "time does not move by itself")

	f.Advance(time.Second)
	assert.Equal(t, t0.Add(time.Second), f.Now())

	f.Advance(0)
	assert.Equal(t, t0.Add(time.Second), f.Now())

	f.Advance(time.Hour + time.Nanosecond)
	assert.Equal(t, t0.Add(time.Second+time.Hour+time.Nanosecond), f.Now())
}

func TestFakeIsAClock(t *testing.T) {
	var c clock.Clock = clock.NewFake(t0)
	assert.Equal(t, t0, c.Now())
}

func TestFakeTimerFiresExactlyWhenAdvanceReachesItsDeadline(t *testing.T) {
	f := clock.NewFake(t0)
	const d = 5 * time.Second
	timer := f.NewTimer(d)

	f.Advance(d - time.Nanosecond)
	requireEmpty(t, timer.C())
	assert.Equal(t, 1, f.Timers(), "the timer is still armed one nanosecond before its deadline")

	f.Advance(time.Nanosecond)
	assert.Equal(t, t0.Add(d), requireFired(t, timer.C()), "the timer delivers the fake time")
	assert.Equal(t, 0, f.Timers(), "a fired timer is no longer armed")

	f.Advance(time.Hour)
	requireEmpty(t, timer.C()) // a timer fires once
}

func TestFakeTimerFiredByALongAdvanceDeliversTheTimeAdvancedTo(t *testing.T) {
	f := clock.NewFake(t0)
	timer := f.NewTimer(time.Second)

	f.Advance(time.Minute)
	assert.Equal(t, t0.Add(time.Minute), requireFired(t, timer.C()))
}

func TestFakeAdvanceFiresEveryTimerWhoseDeadlineIsReachedAndNoOther(t *testing.T) {
	f := clock.NewFake(t0)
	early, due, late := f.NewTimer(time.Second), f.NewTimer(2*time.Second), f.NewTimer(3*time.Second)

	f.Advance(2 * time.Second)
	assert.Equal(t, t0.Add(2*time.Second), requireFired(t, early.C()))
	assert.Equal(t, t0.Add(2*time.Second), requireFired(t, due.C()))
	requireEmpty(t, late.C())
	assert.Equal(t, 1, f.Timers())
}

func TestFakeTimerStopReportsThatItStoppedAnArmedTimerAndPreventsItFromFiring(t *testing.T) {
	f := clock.NewFake(t0)
	timer := f.NewTimer(time.Second)

	assert.True(t, timer.Stop(), "Stop of an armed timer reports it active")
	assert.Equal(t, 0, f.Timers())
	f.Advance(time.Hour)
	requireEmpty(t, timer.C())

	assert.False(t, timer.Stop(), "Stop of a stopped timer reports it inactive")
}

func TestFakeTimerStopReportsAFiredTimerInactive(t *testing.T) {
	f := clock.NewFake(t0)
	timer := f.NewTimer(time.Second)
	f.Advance(time.Second)
	requireFired(t, timer.C())

	assert.False(t, timer.Stop())
	assert.Equal(t, 0, f.Timers())
}

func TestFakeTimerResetReArmsAStoppedTimerFromTheCurrentFakeTime(t *testing.T) {
	f := clock.NewFake(t0)
	timer := f.NewTimer(time.Second)
	require.True(t, timer.Stop())
	f.Advance(time.Minute)

	assert.False(t, timer.Reset(2*time.Second), "Reset of a stopped timer reports it inactive")
	assert.Equal(t, 1, f.Timers())

	f.Advance(2*time.Second - time.Nanosecond)
	requireEmpty(t, timer.C())
	f.Advance(time.Nanosecond)
	assert.Equal(t, t0.Add(time.Minute+2*time.Second), requireFired(t, timer.C()))
}

func TestFakeTimerResetMovesTheDeadlineOfAnArmedTimer(t *testing.T) {
	f := clock.NewFake(t0)
	timer := f.NewTimer(time.Second)

	assert.True(t, timer.Reset(3*time.Second), "Reset of an armed timer reports it active")
	assert.Equal(t, 1, f.Timers(), "Reset does not arm a second timer")

	f.Advance(time.Second)
	requireEmpty(t, timer.C()) // the old deadline passed without firing
	f.Advance(2*time.Second - time.Nanosecond)
	requireEmpty(t, timer.C())
	f.Advance(time.Nanosecond)
	assert.Equal(t, t0.Add(3*time.Second), requireFired(t, timer.C()))

	later := f.NewTimer(time.Hour)
	assert.True(t, later.Reset(time.Second), "a deadline can move earlier too")
	f.Advance(time.Second)
	requireFired(t, later.C())
}

func TestFakeTimerResetReArmsAFiredTimer(t *testing.T) {
	f := clock.NewFake(t0)
	timer := f.NewTimer(time.Second)
	f.Advance(time.Second)
	requireFired(t, timer.C())

	timer.Reset(time.Second)
	assert.Equal(t, 1, f.Timers())
	f.Advance(time.Second)
	assert.Equal(t, t0.Add(2*time.Second), requireFired(t, timer.C()))
}

func TestFakeTimerResetDropsAValueThatWasSentButNotReceived(t *testing.T) {
	f := clock.NewFake(t0)
	timer := f.NewTimer(time.Second)
	f.Advance(time.Second) // fires; nobody reads t0+1s

	timer.Reset(time.Second)
	requireEmpty(t, timer.C())

	f.Advance(time.Second)
	assert.Equal(t, t0.Add(2*time.Second), requireFired(t, timer.C()), "the stale t0+1s is gone")
	requireEmpty(t, timer.C())
}

func TestFakeTimerWithANonPositiveDurationFiresAtOnce(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Nanosecond, -time.Hour} {
		t.Run(d.String(), func(t *testing.T) {
			f := clock.NewFake(t0)

			timer := f.NewTimer(d)
			assert.Equal(t, t0, requireFired(t, timer.C()), "NewTimer fires at once with the fake time")
			assert.Equal(t, 0, f.Timers())

			armed := f.NewTimer(time.Hour)
			assert.True(t, armed.Reset(d), "Reset reports the timer was active")
			assert.Equal(t, t0, requireFired(t, armed.C()), "Reset fires at once")
			assert.Equal(t, 0, f.Timers(), "the timer fired instead of staying armed")

			assert.False(t, armed.Reset(d), "Reset reports a fired timer inactive")
			assert.Equal(t, t0, requireFired(t, armed.C()))

			f.Advance(time.Hour)
			requireEmpty(t, timer.C())
			requireEmpty(t, armed.C())
		})
	}
}

func TestFakeTimersCountsArmedTimers(t *testing.T) {
	f := clock.NewFake(t0)
	assert.Equal(t, 0, f.Timers())

	a, b := f.NewTimer(time.Second), f.NewTimer(2*time.Second)
	f.NewTimer(3 * time.Second)
	assert.Equal(t, 3, f.Timers())

	b.Stop()
	assert.Equal(t, 2, f.Timers(), "a stopped timer is not counted")

	f.Advance(time.Second)
	assert.Equal(t, 1, f.Timers(), "a fired timer is not counted")

	b.Reset(time.Minute)
	a.Reset(time.Minute)
	assert.Equal(t, 3, f.Timers(), "re-armed timers are counted again")

	f.Advance(time.Minute)
	assert.Equal(t, 0, f.Timers())
}

func TestFakeWaitForTimersReturnsAtOnceWhenEnoughTimersAreArmed(t *testing.T) {
	ctx := testContext(t)
	f := clock.NewFake(t0)
	require.NoError(t, f.WaitForTimers(ctx, 0))

	f.NewTimer(time.Second)
	f.NewTimer(time.Second)
	require.NoError(t, f.WaitForTimers(ctx, 1))
	require.NoError(t, f.WaitForTimers(ctx, 2))
}

func TestFakeWaitForTimersReturnsWhenAnotherGoroutineArmsATimer(t *testing.T) {
	ctx := testContext(t)
	f := clock.NewFake(t0)

	// The other goroutine arms one timer per step, stopping and re-arming some on the way, so
	// WaitForTimers has to wake on each change and re-count until the goal is reached.
	const goal = 50
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range goal {
			timer := f.NewTimer(time.Duration(i+1) * time.Second)
			if i%2 == 0 {
				timer.Stop()
				timer.Reset(time.Hour)
			}
		}
	}()

	require.NoError(t, f.WaitForTimers(ctx, goal))
	assert.Equal(t, goal, f.Timers(), "WaitForTimers returned before the goal was armed")
	select {
	case <-done:
	case <-ctx.Done():
		require.FailNow(t, "the arming goroutine did not finish")
	}
}

func TestFakeWaitForTimersWakesWhenAStoppedTimerIsReArmed(t *testing.T) {
	ctx := testContext(t)
	f := clock.NewFake(t0)
	timer := f.NewTimer(time.Second)
	require.True(t, timer.Stop())

	done := make(chan struct{})
	go func() {
		defer close(done)
		timer.Reset(time.Second)
	}()

	require.NoError(t, f.WaitForTimers(ctx, 1))
	assert.Equal(t, 1, f.Timers())
	select {
	case <-done:
	case <-ctx.Done():
		require.FailNow(t, "the re-arming goroutine did not finish")
	}
}

func TestFakeWaitForTimersReturnsTheContextErrorWhenTheContextEndsFirst(t *testing.T) {
	f := clock.NewFake(t0)
	f.NewTimer(time.Second) // one armed, but the waits below want two

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, f.WaitForTimers(canceled, 2), context.Canceled)

	expired, cancelExpired := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancelExpired()
	assert.ErrorIs(t, f.WaitForTimers(expired, 2), context.DeadlineExceeded)

	// A context canceled by another goroutine, typically while WaitForTimers is blocked.
	later, cancelLater := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		cancelLater()
	}()
	assert.ErrorIs(t, f.WaitForTimers(later, 2), context.Canceled)
	<-done // cancelLater has returned, as WaitForTimers saw its effect
	assert.Equal(t, 1, f.Timers())
}

func TestRealNowIsTheSystemTime(t *testing.T) {
	before := time.Now()
	now := clock.Real().Now()
	after := time.Now()
	assert.False(t, now.Before(before))
	assert.False(t, now.After(after))
}

func TestRealTimerFires(t *testing.T) {
	ctx := testContext(t)
	c := clock.Real()
	start := time.Now()
	timer := c.NewTimer(time.Millisecond)

	select {
	case fired := <-timer.C():
		assert.GreaterOrEqual(t, fired.Sub(start), time.Millisecond)
	case <-ctx.Done():
		require.FailNow(t, "real timer did not fire")
	}
	assert.False(t, timer.Stop(), "a fired and received timer is inactive")

	assert.False(t, timer.Reset(time.Millisecond), "Reset reports the fired timer inactive")
	select {
	case <-timer.C():
	case <-ctx.Done():
		require.FailNow(t, "reset real timer did not fire")
	}
}

func TestRealTimerStopPreventsFiring(t *testing.T) {
	ctx := testContext(t)
	timer := clock.Real().NewTimer(time.Hour)
	assert.True(t, timer.Stop(), "Stop of an armed timer reports it active")
	assert.False(t, timer.Stop())

	// Re-armed short, it fires; that it fires now and not in an hour shows Reset took effect.
	assert.False(t, timer.Reset(time.Millisecond))
	select {
	case <-timer.C():
	case <-ctx.Done():
		require.FailNow(t, "reset real timer did not fire")
	}
}

func TestFakeTimerStopDropsAnUnreadValueLikeTimeTimer(t *testing.T) {
	f := clock.NewFake(t0)
	timer := f.NewTimer(time.Second)
	f.Advance(time.Second) // fires; nobody reads it

	assert.True(t, timer.Stop(), "as time.Timer since Go 1.23: an unread value counts as active")
	requireEmpty(t, timer.C())
	assert.False(t, timer.Stop())

	again := f.NewTimer(time.Second)
	f.Advance(time.Second)
	assert.True(t, again.Reset(time.Second), "Reset reports an unread value as active too")
}
