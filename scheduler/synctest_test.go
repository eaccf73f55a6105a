package scheduler_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/clock"
	"github.com/zkpaas/paas/scheduler"
)

// The tests in this file run the scheduler on the real clock inside a testing/synctest bubble:
// time there is virtual, and moves only when every goroutine of the bubble is blocked, so
// synctest.Wait says "the scheduler is asleep" where the tests on clock.Fake count the
// timers it has armed, and time.Sleep moves the clock where they call Advance.

// runInBubble runs a scheduler on the real clock until the bubble's test ends.
func runInBubble(t *testing.T) *scheduler.RetryScheduler {
	s := scheduler.New(clock.Real())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		assert.ErrorIs(t, <-done, context.Canceled)
	})
	return s
}

func TestInABubbleAnEarlierEntryWakesASchedulerAsleepOnALaterOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := runInBubble(t)
		start := time.Now()
		early, late := paas.NewTaskID(), paas.NewTaskID()

		s.Schedule(scheduler.Due{ID: late, At: start.Add(time.Hour)})
		synctest.Wait() // asleep until the hour
		s.Schedule(scheduler.Due{ID: early, At: start.Add(time.Second)})
		synctest.Wait()
		requireNothingDelivered(t, s)

		// Had the scheduler kept sleeping on the hour, nothing would arrive at the second.
		got := <-s.Due()
		assert.Equal(t, scheduler.Due{ID: early, At: start.Add(time.Second)}, got)
		assert.Equal(t, time.Second, time.Since(start), "delivered at its due time, not later")
		synctest.Wait()
		requireNothingDelivered(t, s)
		assert.Equal(t, 1, s.Len())

		got = <-s.Due()
		assert.Equal(t, scheduler.Due{ID: late, At: start.Add(time.Hour)}, got)
		assert.Equal(t, time.Hour, time.Since(start))
	})
}

func TestInABubbleEntriesComeOutInDueTimeOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := runInBubble(t)
		start := time.Now()
		ids := []paas.TaskID{paas.NewTaskID(), paas.NewTaskID(), paas.NewTaskID()}
		for i, d := range []time.Duration{3 * time.Minute, time.Minute, 2 * time.Minute} {
			s.Schedule(scheduler.Due{ID: ids[i], At: start.Add(d), Kind: scheduler.Kind(i)})
		}
		var order []scheduler.Kind
		for range ids {
			d := <-s.Due()
			require.Equal(t, d.At, time.Now(), "each comes at its due time")
			order = append(order, d.Kind)
		}
		assert.Equal(t, []scheduler.Kind{1, 2, 0}, order)
	})
}
