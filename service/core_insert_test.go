package service

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
)

// With capacity free and nothing queued, a new task is stored InProgress, its first attempt
// begun, and starts once that one write is stored.
func TestCoreInsertsATaskThatCanStartInProgress(t *testing.T) {
	c := nativeHarness(t, 3)
	c.startOnInsert = true
	reply := make(chan submitReply, 1)
	c.core.submit(record("a", paas.BackendNative, 1), nil, true, reply)
	assert.Empty(t, c.takeStarts(), "no handler may start before its insert is stored")
	written := c.commitAll()
	require.Len(t, written, 1, "one write: the insert")
	assert.Equal(t, paas.InProgress, written[0].State)
	assert.Equal(t, 1, written[0].Attempts)
	assert.Equal(t, 1, written[0].Runs)
	id := (<-reply).id
	starts := c.takeStarts()
	require.Len(t, starts, 1)
	assert.Equal(t, id, starts[0].task.ID)
	assert.Equal(t, 1, starts[0].task.Attempt)
	assert.Equal(t, paas.StatusSummary{InProgress: 1}, c.summary())

	// The worker is taken: the next task waits its turn, Pending.
	next := c.submit(record("b", paas.BackendNative, 1))
	assert.Equal(t, paas.Pending, c.state_(next))
	c.handlerDone(id, nil)
	c.dispatch()
	written = c.commitAll()
	require.Len(t, written, 2)
	assert.Equal(t, paas.Completed, written[0].State)
	assert.Equal(t, paas.InProgress, written[1].State)
}

// A task queued before a new one goes first, even when the new one would fit.
func TestCoreInsertsPendingBehindAQueuedTask(t *testing.T) {
	c := newHarness(t, map[paas.Backend]int64{paas.BackendNative: 3}, noJitter(3))
	c.startOnInsert = true
	heavy := record("heavy", paas.BackendNative, 3)
	light := record("light", paas.BackendNative, 1)
	running := c.submit(record("running", paas.BackendNative, 1))
	assert.Equal(t, paas.InProgress, c.state_(running))
	queued := c.submit(heavy)
	assert.Equal(t, paas.Pending, c.state_(queued), "it needs all three")
	later := c.submit(light)
	assert.Equal(t, paas.Pending, c.state_(later), "two are free, but the heavy task is first")
}

// An insert that finds the key stored already creates nothing, and gives back the capacity
// it took.
func TestCoreGivesBackTheCapacityOfAnInsertThatFoundItsTask(t *testing.T) {
	c := nativeHarness(t, 3)
	c.startOnInsert = true
	reply := make(chan submitReply, 1)
	c.core.submit(record("a", paas.BackendNative, 1), nil, true, reply)
	w := c.writes[0]
	c.writes = nil
	existing := paas.NewTaskID()
	w.Record.ID, w.Record.State = existing, paas.Completed
	c.commit(written{Write: w})
	assert.Equal(t, existing, (<-reply).id)
	assert.True(t, c.sems[paas.BackendNative].TryAcquire(1), "the worker is free again")
}
