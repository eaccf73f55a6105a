package service

import (
	"context"
	"time"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/internal/attempt"
)

// task is what the cache holds of an unfinished task. A backlog is mostly tasks that wait in
// a queue, so what every task has is kept small (192 bytes); what few have, a running
// attempt, waiters, a checkpoint, an error, a due time, is in extra, allocated when needed.
type task struct {
	rec     cached // as last committed, but for the fields in x
	deps    int32  // dependencies not yet Completed
	writing bool   // a write is in flight
	queued  bool   // in its backend's queue
	gone    bool   // not inserted (a duplicate, an error) or dropped: ignore it
	counted bool   // revived from a final state already in counts
	x       *extra // nil until needed
}

// cached holds the fields of a task's record that every task needs: identity, dispatch and
// the budget. UpdatedAt is not kept: each write sets it anew.
type cached struct {
	ID         paas.TaskID
	Key        paas.TaskKey
	Seq        uint64
	Version    uint64
	Backend    paas.Backend
	RoutingKey paas.RoutingKey
	Program    []byte
	Weight     int64
	Priority   int
	Timeout    time.Duration
	Attempts   int
	Runs       int
	CreatedAt  time.Time
	State      paas.TaskState
	NoTimeout  bool
}

// extra holds the rest of a task's record, and the service's business with the task beyond
// queueing it.
type extra struct {
	// Of the record.
	dependsOn             []paas.TaskID
	restarts              int
	interruptions         int
	checkpoint            []byte
	lastError             string
	failedDependency      paas.TaskID
	failedDependencyState paas.TaskState
	nextAttemptAt         time.Time
	waitingSince          time.Time

	run        context.Context         // the handler's context, set while it runs
	cancel     context.CancelCauseFunc // cancels run
	deadline   time.Time               // when run times out; zero if never
	done       *attempt.Verdict        // the handler's outcome, waiting for a write to commit
	cancelReq  bool                    // the user asked to cancel
	cancelAcks []chan<- error          // Cancel calls answered when the task is final
	cancelled  bool                    // a Cancel has been answered nil: later ones come second
	saveAck    chan<- error            // the SaveCheckpoint call answered at commit
	retryAck   chan<- error            // the Retry call answered when its write commits
	// Retries that came while that write was in flight: answered at its commit, that the task
	// is not finished, or, if it did not take, to try again.
	laterRetries []chan<- error

	failedDep      paas.TaskID    // a dependency that ended Failed or Cancelled
	failedDepState paas.TaskState // its final state, where known

	waiters []chan<- outcome
}

// none is what a task without extra reads: all zero.
var none extra

// newTask returns a task holding rec.
func newTask(rec paas.TaskRecord) *task {
	t := &task{}
	t.set(rec)
	return t
}

// more returns t's extra, allocating it if t has none yet.
func (t *task) more() *extra {
	if t.x == nil {
		t.x = &extra{}
	}
	return t.x
}

// get returns t's extra to read: none if it has none.
func (t *task) get() *extra {
	if t.x == nil {
		return &none
	}
	return t.x
}

// running reports whether the handler of t's attempt is running.
func (t *task) running() bool { return t.x != nil && t.x.cancel != nil }

// set makes rec the record t holds.
func (t *task) set(rec paas.TaskRecord) {
	t.rec = cached{
		ID:         rec.ID,
		Key:        rec.Key,
		Seq:        rec.Seq,
		Version:    rec.Version,
		Backend:    rec.Backend,
		RoutingKey: rec.RoutingKey,
		Program:    rec.Program,
		Weight:     rec.Weight,
		Priority:   rec.Priority,
		Timeout:    rec.Timeout,
		Attempts:   rec.Attempts,
		Runs:       rec.Runs,
		CreatedAt:  rec.CreatedAt,
		State:      rec.State,
		NoTimeout:  rec.NoTimeout,
	}
	rare := rec.DependsOn != nil || rec.Restarts != 0 || rec.Interruptions != 0 ||
		rec.Checkpoint != nil || rec.LastError != "" || !rec.FailedDependency.IsZero() ||
		rec.FailedDependencyState != 0 || !rec.NextAttemptAt.IsZero() || !rec.WaitingSince.IsZero()
	if !rare && t.x == nil {
		return
	}
	x := t.more()
	x.dependsOn = rec.DependsOn
	x.restarts, x.interruptions = rec.Restarts, rec.Interruptions
	x.checkpoint, x.lastError = rec.Checkpoint, rec.LastError
	x.failedDependency, x.failedDependencyState = rec.FailedDependency, rec.FailedDependencyState
	x.nextAttemptAt, x.waitingSince = rec.NextAttemptAt, rec.WaitingSince
}

// record returns the record t holds, its UpdatedAt zero.
func (t *task) record() paas.TaskRecord {
	x := t.get()
	return paas.TaskRecord{
		ID:                    t.rec.ID,
		Seq:                   t.rec.Seq,
		Version:               t.rec.Version,
		Key:                   t.rec.Key,
		RoutingKey:            t.rec.RoutingKey,
		Backend:               t.rec.Backend,
		Program:               t.rec.Program,
		Weight:                t.rec.Weight,
		Priority:              t.rec.Priority,
		DependsOn:             x.dependsOn,
		Timeout:               t.rec.Timeout,
		NoTimeout:             t.rec.NoTimeout,
		State:                 t.rec.State,
		Attempts:              t.rec.Attempts,
		Restarts:              x.restarts,
		Interruptions:         x.interruptions,
		Runs:                  t.rec.Runs,
		Checkpoint:            x.checkpoint,
		LastError:             x.lastError,
		FailedDependency:      x.failedDependency,
		FailedDependencyState: x.failedDependencyState,
		NextAttemptAt:         x.nextAttemptAt,
		WaitingSince:          x.waitingSince,
		CreatedAt:             t.rec.CreatedAt,
	}
}
