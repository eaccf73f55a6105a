package service

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/semaphore"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/internal/attempt"
	"github.com/zkpaas/paas/scheduler"
)

// core is the synchronous core of the service: every decision about tasks is a plain method
// here, and it starts no goroutines and does no I/O. What the decisions require of the outside
// world goes to three outboxes (writes, starts, timers) that the run loop drains after every
// step. Tests drive it directly, without channels or timing.
//
// The cache holds the unfinished tasks. A change to a task becomes visible (to Status, waiters,
// dispatch) only when the store has acknowledged its write: propose queues the write, commit
// applies it. A task has at most one write in flight; what happens to it meanwhile (a Cancel, a
// dependency that ends, the end of its handler) is remembered on the task and acted on at
// commit, by settle.
type core struct {
	retry        paas.RetryConfig
	timeouts     map[paas.Backend]time.Duration
	maxInputWait time.Duration
	runnable     func(paas.TaskRecord) error // whether this service can run a task; nil: all
	now          func() time.Time
	log          *zap.Logger
	// startOnInsert: a new task that can start at once is inserted InProgress (see
	// startable). The service sets it; the core's own tests leave it off, to script each step.
	startOnInsert bool

	tasks      map[paas.TaskID]*task
	byKey      map[paas.TaskKey]*task
	inserts    map[paas.TaskKey]*insertion // submits waiting for their insert to commit
	dependents map[paas.TaskID][]*task     // unfinished task → Blocked tasks waiting for it
	queues     map[paas.Backend]*taskQueue // Pending tasks, by priority then submission order
	sems       map[paas.Backend]*semaphore.Weighted

	counts *counts // per state; shared with Summary
	// finished holds the tasks in the final counts, so that a Retry of one takes it out of
	// them, and of one that finished before the start does not: a few dozen bytes a task.
	finished map[paas.TaskID]struct{}
	running  int // handlers started and not yet returned
	inflight int // writes proposed and not yet committed, or waiting to be written again
	stopping bool
	aborted  bool // Stop's ctx has ended: writes that fail are given up
	rewrites rewrites

	// Outboxes.
	writes []paas.Write
	starts []start
	timers []scheduler.Due
}

const numStates = 7 // len(paas.States)

// Kinds of scheduler entries.
const (
	dueAttempt  scheduler.Kind = iota // a Retrying task, or one Blocked on its input, may run again
	dueDeadline                       // the attempt running since then has used up its timeout
	dueRewrite                        // the writes that failed may be tried again
)

type insertion struct {
	task    *task // the task the insert creates, if it does
	replies []chan<- submitReply
}

// written is the store's answer to a write. For an insert that succeeded, Record is the
// record the store holds for the key: the new one, or the one that already existed.
type written struct {
	paas.Write
	err error
}

// start asks the run loop to launch the handler of a task.
type start struct {
	ctx  context.Context
	task paas.Task
}

// outcome is what a waiter is told: the task's result, or why it cannot be known.
type outcome struct {
	res paas.TaskResult
	err error
}

type submitReply struct {
	id  paas.TaskID
	err error
}

// errResolve asks the submitter to read again from the store the dependencies it thought
// unfinished: the service no longer holds them, so they have ended since. To a submit whose
// dependencies were not read yet, it says that the task is new to the service.
var errResolve = errors.New("dependencies ended meanwhile")

// errReread tells a Retry that the task changed in the store since it was read, and a Wait or
// Cancel that the task they found held is not: they read it again.
var errReread = errors.New("task changed since it was read")

func newCore(cfg paas.Config, runnable func(paas.TaskRecord) error) *core {
	s := &core{
		retry:        *cfg.Retry,
		timeouts:     cfg.Timeouts,
		maxInputWait: cfg.MaxInputWait,
		runnable:     runnable,
		now:          cfg.Clock.Now,
		log:          cfg.Logger,
		counts:       &counts{},
		finished:     make(map[paas.TaskID]struct{}),
		rewrites:     rewrites{delay: writeRetryBase},
		tasks:        make(map[paas.TaskID]*task),
		byKey:        make(map[paas.TaskKey]*task),
		inserts:      make(map[paas.TaskKey]*insertion),
		dependents:   make(map[paas.TaskID][]*task),
		queues:       make(map[paas.Backend]*taskQueue),
		sems:         make(map[paas.Backend]*semaphore.Weighted),
	}
	for b, n := range cfg.Workers {
		s.queues[b] = &taskQueue{}
		s.sems[b] = semaphore.NewWeighted(n)
	}
	return s
}

// load adopts the unfinished records found in the store at start. Pending tasks are queued,
// Retrying ones and those Blocked on their input keep their due time, and InProgress ones were
// running when the process that ran them stopped: that attempt counts against
// MaxInterruptions, so a task that crashes the process stops looping. ended holds the state of
// the dependencies of Blocked tasks that are not among recs (zero for one the store does not
// have).
func (c *core) load(recs []paas.TaskRecord, ended map[paas.TaskID]paas.TaskState) {
	var blocked []*task
	if len(c.tasks) == 0 {
		c.tasks = make(map[paas.TaskID]*task, len(recs))
		c.byKey = make(map[paas.TaskKey]*task, len(recs))
	}
	for i := range recs {
		rec := &recs[i]
		if c.runnable != nil {
			if err := c.runnable(*rec); err != nil {
				// Left as it is in the store, to run once a service configured for it starts.
				c.log.Warn("unfinished task not loaded", append(taskFields(*rec), zap.Error(err))...)
				continue
			}
		}
		t := c.adopt(newTask(*rec))
		switch rec.State {
		case paas.Pending:
			c.enqueue(t)
		case paas.Retrying:
			c.schedule(t.rec.ID, rec.NextAttemptAt, dueAttempt)
		case paas.InProgress:
			c.settleAttempt(t, attempt.Judge(attempt.ErrCrashed, nil, *rec, c.retry, c.now(), c.maxInputWait))
		case paas.Blocked:
			blocked = append(blocked, t)
		}
	}
	// Dependencies are resolved once every task is cached, whatever the order of recs.
	var unfinished map[paas.TaskID]bool // recs, loaded or not; built if needed
	for _, t := range blocked {
		x := t.get()
		if !x.nextAttemptAt.IsZero() {
			c.schedule(t.rec.ID, x.nextAttemptAt, dueAttempt)
			continue
		}
		for _, dep := range x.dependsOn {
			if c.tasks[dep] == nil && unfinished == nil {
				unfinished = make(map[paas.TaskID]bool, len(recs))
				for i := range recs {
					unfinished[recs[i].ID] = true
				}
			}
			switch st := ended[dep]; {
			case c.tasks[dep] != nil:
				c.await(t, dep)
			case unfinished[dep]:
				t.deps++ // a task this service cannot run: wait for a service that can
			case st == 0:
				// Prune keeps the tasks that unfinished ones depend on, so this one was pruned
				// while the task was being submitted, after Submit had found it Completed.
				c.log.Warn("dependency no longer stored; it had completed", append(taskFields(t.record()), zap.Stringer("dependency", dep))...)
			case st != paas.Completed && t.get().failedDep.IsZero():
				tx := t.more()
				tx.failedDep, tx.failedDepState = dep, st
			}
		}
		c.settle(t)
	}
}

func (c *core) adopt(t *task) *task {
	c.tasks[t.rec.ID] = t
	c.byKey[t.rec.Key] = t
	c.counts.move(0, t.rec.State)
	return t
}

// await makes t wait for dep, a cached unfinished task.
func (c *core) await(t *task, dep paas.TaskID) {
	t.deps++
	c.dependents[dep] = append(c.dependents[dep], t)
}

// settle does what a task's newly committed state, and what happened to it meanwhile, asks for.
func (c *core) settle(t *task) {
	st := t.rec.State
	switch {
	case st.Final():
		c.finish(t)
	case t.get().done != nil:
		// The handler returned while a checkpoint was being written.
		v := *t.x.done
		t.x.done = nil
		c.settleAttempt(t, v)
	case t.get().cancelReq:
		// Cancel arrived while a write was in flight. A task that has just been moved to
		// InProgress has not started its handler yet, so it is cancelled without running,
		// and the attempt it was given is taken back.
		unstarted := st == paas.InProgress
		if unstarted {
			c.sems[t.rec.Backend].Release(t.rec.Weight)
		}
		c.propose(t, paas.Cancelled, func(r *paas.TaskRecord) {
			r.NextAttemptAt = time.Time{}
			if unstarted {
				r.Attempts--
				r.Runs--
			}
		})
	case st == paas.InProgress && c.stopping:
		c.sems[t.rec.Backend].Release(t.rec.Weight)
		c.propose(t, paas.Pending, func(r *paas.TaskRecord) { r.Attempts--; r.Runs-- })
	case st == paas.InProgress:
		c.launch(t)
	case st == paas.Pending:
		c.enqueue(t)
	case st == paas.Retrying:
		c.schedule(t.rec.ID, t.get().nextAttemptAt, dueAttempt)
	case st == paas.Blocked && !t.get().nextAttemptAt.IsZero():
		c.schedule(t.rec.ID, t.x.nextAttemptAt, dueAttempt) // waiting for its input
	case st == paas.Blocked && !t.get().failedDep.IsZero():
		dep, depState := t.x.failedDep, t.x.failedDepState
		c.propose(t, paas.Failed, func(r *paas.TaskRecord) {
			r.FailedDependency, r.FailedDependencyState = dep, depState
			r.LastError = (&paas.DependencyError{ID: dep, State: depState}).Error()
		})
	case st == paas.Blocked && t.deps == 0:
		c.propose(t, paas.Pending, nil)
	}
}

func (c *core) schedule(id paas.TaskID, at time.Time, kind scheduler.Kind) {
	c.timers = append(c.timers, scheduler.Due{ID: id, At: at, Kind: kind})
}

func (c *core) enqueue(t *task) {
	if !c.stopping {
		c.queues[t.rec.Backend].push(t)
	}
}

func (c *core) forget(t *task) {
	t.queued = false
	t.gone = true
	delete(c.tasks, t.rec.ID)
	delete(c.byKey, t.rec.Key)
}

// propose asks for t to move to next; edit adjusts the other fields of the new record.
func (c *core) propose(t *task, next paas.TaskState, edit func(*paas.TaskRecord)) {
	if !t.rec.State.CanTransitionTo(next) {
		c.log.DPanic("illegal task transition", append(taskFields(t.record()), zap.Stringer("to", next))...)
		return
	}
	// The new record is edited where it is queued: a copy on the stack would move to the
	// heap, edit being unknown here.
	rec := c.queueWrite(t, t.record())
	rec.State = next
	rec.UpdatedAt = c.now()
	if edit != nil {
		edit(rec)
	}
}

// queueWrite queues rec, the next version of t, numbered after the one committed: the store
// applies it only on top of that one. It returns the queued record, which may be changed
// until the batch goes to the writer.
func (c *core) queueWrite(t *task, rec paas.TaskRecord) *paas.TaskRecord {
	rec.Version = t.rec.Version + 1
	t.writing = true
	c.inflight++
	c.writes = append(c.writes, paas.Write{Record: rec})
	return &c.writes[len(c.writes)-1].Record
}

// idle reports whether nothing is running or being written, so a stopping loop may exit.
func (c *core) idle() bool { return c.running == 0 && c.inflight == 0 }

// debug logs a task's change at debug level: msg, or if it is empty "task" and the record's
// state. The message and fields are built only if the level is on: this runs for every change
// of every task.
func (c *core) debug(msg string, rec paas.TaskRecord) {
	if !c.log.Core().Enabled(zap.DebugLevel) {
		return
	}
	if msg == "" {
		msg = "task " + rec.State.String()
	}
	if ce := c.log.Check(zap.DebugLevel, msg); ce != nil {
		ce.Write(taskFields(rec)...)
	}
}

func slot(st paas.TaskState) int { return int(st) - 1 }

func taskFields(rec paas.TaskRecord) []zap.Field {
	return []zap.Field{
		zap.Stringer("task_id", rec.ID),
		zap.String("backend", string(rec.Backend)),
		zap.String("routing_key", string(rec.RoutingKey)),
		zap.Int("attempt", rec.Runs),
	}
}
