package service

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/semaphore"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/scheduler"
)

// state is the synchronous core of the service: every decision about tasks is a plain method
// here, and it starts no goroutines and does no I/O. What the decisions require of the outside
// world goes to three outboxes (writes, starts, retries) that the run loop drains after every
// step. Tests drive it directly, without channels or timing.
//
// The cache holds the unfinished tasks. A change to a task becomes visible (to Status, waiters,
// dispatch) only when the store has acknowledged its write: propose queues the write, commit
// applies it. A task has at most one write in flight; what happens to it meanwhile (a Cancel)
// is remembered on the task and acted on at commit.
type state struct {
	retry    paas.RetryConfig
	runnable func(paas.TaskRecord) error // whether this service can run a task; nil: all
	now      func() time.Time
	log      *zap.Logger

	tasks   map[paas.TaskID]*task
	byKey   map[paas.TaskKey]*task
	inserts map[paas.TaskKey]*insertion // submits waiting for their insert to commit
	queues  map[paas.Backend]*taskQueue // Pending tasks, by submission order
	sems    map[paas.Backend]*semaphore.Weighted

	counts   [numStates]int // per state; final states since start
	running  int            // handlers started and not yet returned
	inflight int            // writes proposed and not yet committed
	stopping bool

	// Outboxes.
	writes  []paas.Write
	starts  []start
	retries []scheduler.Due
}

const numStates = 6 // len(paas.States)

type task struct {
	rec     paas.TaskRecord // as last committed
	writing bool            // a write is in flight
	queued  bool            // in its backend's queue

	run        context.Context         // the handler's context, set while it runs
	cancel     context.CancelCauseFunc // cancels run
	cancelReq  bool                    // the user asked to cancel
	cancelAcks []chan<- error          // Cancel calls answered when the task is Cancelled

	waiters []chan<- outcome
}

type insertion struct {
	id      paas.TaskID // of the record being inserted
	replies []chan<- submitReply
}

// written is the store's answer to a write.
type written struct {
	paas.Write
	stored paas.TaskRecord // for an insert: the record the store holds for the key
	err    error
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

func newState(cfg paas.Config, runnable func(paas.TaskRecord) error) *state {
	s := &state{
		retry:    *cfg.Retry,
		runnable: runnable,
		now:      cfg.Clock.Now,
		log:      cfg.Logger,
		tasks:    make(map[paas.TaskID]*task),
		byKey:    make(map[paas.TaskKey]*task),
		inserts:  make(map[paas.TaskKey]*insertion),
		queues:   make(map[paas.Backend]*taskQueue),
		sems:     make(map[paas.Backend]*semaphore.Weighted),
	}
	for b, n := range cfg.Workers {
		s.queues[b] = &taskQueue{}
		s.sems[b] = semaphore.NewWeighted(n)
	}
	return s
}

// load adopts the unfinished records found in the store at start. Pending tasks are queued,
// Retrying ones keep their due time, and InProgress ones were running when the process that ran
// them stopped: that attempt counts, so a task that crashes the process runs out of budget.
func (s *state) load(recs []paas.TaskRecord) {
	for _, rec := range recs {
		if s.runnable != nil {
			if err := s.runnable(rec); err != nil {
				// Left as it is in the store, to run once a service configured for it starts.
				s.log.Warn("unfinished task not loaded", append(taskFields(rec), zap.Error(err))...)
				continue
			}
		}
		t := s.adopt(rec)
		switch rec.State {
		case paas.Pending:
			s.enqueue(t)
		case paas.Retrying:
			s.retries = append(s.retries, scheduler.Due{ID: rec.ID, At: rec.NextAttemptAt})
		case paas.InProgress:
			s.settleAttempt(t, judge(errCrashed, nil, rec.Attempts, s.retry))
		}
	}
}

func (s *state) adopt(rec paas.TaskRecord) *task {
	t := &task{rec: rec}
	s.tasks[rec.ID] = t
	s.byKey[rec.Key] = t
	s.counts[slot(rec.State)]++
	return t
}

// submit asks for rec, a new Pending task, to be stored, unless its key is known.
func (s *state) submit(rec paas.TaskRecord, reply chan<- submitReply) {
	if s.stopping {
		reply <- submitReply{err: paas.ErrStopped}
		return
	}
	if t, ok := s.byKey[rec.Key]; ok {
		reply <- submitReply{id: t.rec.ID}
		return
	}
	if in, ok := s.inserts[rec.Key]; ok {
		in.replies = append(in.replies, reply)
		return
	}
	s.inserts[rec.Key] = &insertion{id: rec.ID, replies: []chan<- submitReply{reply}}
	s.inflight++
	s.writes = append(s.writes, paas.Write{Insert: true, Record: rec})
}

// commit applies the store's answer to a write.
func (s *state) commit(w written) {
	s.inflight--
	if w.Insert {
		s.inserted(w)
		return
	}
	t := s.tasks[w.Record.ID]
	t.writing = false
	if w.err != nil {
		// The writer gives up on an update only when the store is closed or Stop stopped
		// waiting. The store still holds the previous state, which the next start resumes
		// from; until then the task is left alone.
		s.log.Error("task state not persisted", append(taskFields(w.Record), zap.Error(w.err))...)
		if t.rec.State == paas.Pending && w.Record.State == paas.InProgress {
			s.sems[t.rec.Backend].Release(t.rec.Weight)
		}
		s.counts[slot(t.rec.State)]--
		err := fmt.Errorf("paas: task %s: moving it to %s was not stored: %w", t.rec.ID, w.Record.State, w.err)
		for _, w := range t.waiters {
			w <- outcome{err: err}
		}
		for _, a := range t.cancelAcks {
			a <- err
		}
		s.forget(t)
		return
	}
	s.counts[slot(t.rec.State)]--
	s.counts[slot(w.Record.State)]++
	t.rec = w.Record
	s.debug("task "+w.Record.State.String(), w.Record)
	s.settle(t)
}

func (s *state) inserted(w written) {
	in := s.inserts[w.Record.Key]
	delete(s.inserts, w.Record.Key)
	reply := submitReply{id: w.stored.ID, err: w.err}
	if w.err == nil && w.stored.ID == in.id {
		t := s.adopt(w.stored)
		s.debug("task submitted", t.rec)
		s.enqueue(t)
	}
	for _, r := range in.replies {
		r <- reply
	}
}

// settle does what a task's newly committed state asks for.
func (s *state) settle(t *task) {
	switch st := t.rec.State; {
	case st.Final():
		s.finish(t)
	case t.cancelReq:
		// Cancel arrived while a write was in flight. A task that has just been moved to
		// InProgress has not started its handler yet, so it is cancelled without running.
		if st == paas.InProgress {
			s.sems[t.rec.Backend].Release(t.rec.Weight)
		}
		s.propose(t, paas.Cancelled, func(r *paas.TaskRecord) { r.NextAttemptAt = time.Time{} })
	case st == paas.InProgress && s.stopping:
		s.sems[t.rec.Backend].Release(t.rec.Weight)
		s.propose(t, paas.Pending, func(r *paas.TaskRecord) { r.Attempts-- })
	case st == paas.InProgress:
		s.launch(t)
	case st == paas.Pending:
		s.enqueue(t)
	case st == paas.Retrying:
		s.retries = append(s.retries, scheduler.Due{ID: t.rec.ID, At: t.rec.NextAttemptAt})
	}
}

func (s *state) enqueue(t *task) {
	if !s.stopping {
		s.queues[t.rec.Backend].push(t)
	}
}

func (s *state) launch(t *task) {
	t.run, t.cancel = context.WithCancelCause(context.Background())
	s.running++
	s.starts = append(s.starts, start{ctx: t.run, task: paas.Task{
		ID:         t.rec.ID,
		RoutingKey: t.rec.RoutingKey,
		Backend:    t.rec.Backend,
		Program:    t.rec.Program,
		Attempt:    t.rec.Attempts,
	}})
}

// finish answers everyone waiting on a task that reached a final state and drops it from the
// cache: from now on the store alone knows it.
func (s *state) finish(t *task) {
	res := t.rec.Result()
	for _, w := range t.waiters {
		w <- outcome{res: res}
	}
	ack := error(nil)
	if t.rec.State != paas.Cancelled {
		ack = paas.ErrTaskFinished
	}
	for _, a := range t.cancelAcks {
		a <- ack
	}
	s.forget(t)
}

func (s *state) forget(t *task) {
	t.queued = false
	delete(s.tasks, t.rec.ID)
	delete(s.byKey, t.rec.Key)
}

// propose asks for t to move to next; edit adjusts the other fields of the new record.
func (s *state) propose(t *task, next paas.TaskState, edit func(*paas.TaskRecord)) {
	if !t.rec.State.CanTransitionTo(next) {
		s.log.DPanic("illegal task transition", append(taskFields(t.rec), zap.Stringer("to", next))...)
		return
	}
	rec := t.rec
	rec.State = next
	rec.UpdatedAt = s.now()
	if edit != nil {
		edit(&rec)
	}
	t.writing = true
	s.inflight++
	s.writes = append(s.writes, paas.Write{Record: rec})
}

// dispatch moves the heads of the backend queues to InProgress while their backend has free
// capacity. Within a backend the order is strict FIFO: a heavy task at the head waits for
// enough capacity and lighter ones behind it wait too, so it is never starved.
func (s *state) dispatch() {
	if s.stopping {
		return
	}
	for b, q := range s.queues {
		for t := q.peek(); t != nil; t = q.peek() {
			if !s.sems[b].TryAcquire(t.rec.Weight) {
				break
			}
			q.pop()
			s.propose(t, paas.InProgress, func(r *paas.TaskRecord) { r.Attempts++ })
		}
	}
}

// handlerDone records the outcome of an attempt: err is what the handler returned.
func (s *state) handlerDone(id paas.TaskID, err error) {
	t := s.tasks[id]
	s.running--
	// Why the service cancelled the handler, if it did, decides over what the handler
	// returned; the cause is read here, in the loop that alone cancels.
	cause := context.Cause(t.run)
	t.cancel(nil) // release the context's resources
	t.run, t.cancel = nil, nil
	s.sems[t.rec.Backend].Release(t.rec.Weight)
	v := judge(err, cause, t.rec.Attempts, s.retry)
	if v.next == paas.Failed || v.next == paas.Retrying {
		s.log.Warn("attempt failed", append(taskFields(t.rec), zap.Error(err), zap.Stringer("next", v.next))...)
	}
	s.settleAttempt(t, v)
}

func (s *state) settleAttempt(t *task, v verdict) {
	s.propose(t, v.next, func(r *paas.TaskRecord) {
		if v.refund {
			r.Attempts--
		}
		if v.lastErr != "" {
			r.LastError = v.lastErr
		}
		r.NextAttemptAt = time.Time{}
		if v.next == paas.Retrying {
			r.NextAttemptAt = r.UpdatedAt.Add(v.delay)
		}
	})
}

// retryDue moves a Retrying task whose time has come back to Pending.
func (s *state) retryDue(d scheduler.Due) {
	t, ok := s.tasks[d.ID]
	if !ok || s.stopping || t.writing || t.rec.State != paas.Retrying || !t.rec.NextAttemptAt.Equal(d.At) {
		return // stale: cancelled, rescheduled, or left for the next start
	}
	s.propose(t, paas.Pending, func(r *paas.TaskRecord) { r.NextAttemptAt = time.Time{} })
}

// cancel cancels a cached task. ok is false if the task is not cached, in which case the store
// must be asked.
func (s *state) cancel(id paas.TaskID, ack chan<- error) (ok bool) {
	t, ok := s.tasks[id]
	if !ok {
		return false
	}
	switch {
	case t.cancel != nil:
		// Running: the handler's context is cancelled; the task becomes Cancelled when the
		// handler returns.
		t.cancelReq = true
		t.cancel(errCancelled)
		ack <- nil
	case t.writing || t.cancelReq:
		t.cancelReq = true
		t.cancelAcks = append(t.cancelAcks, ack)
	default:
		t.queued = false
		t.cancelAcks = append(t.cancelAcks, ack)
		s.propose(t, paas.Cancelled, func(r *paas.TaskRecord) { r.NextAttemptAt = time.Time{} })
	}
	return true
}

// status returns a cached task's status; ok is false if the task is not cached.
func (s *state) status(id paas.TaskID) (st paas.TaskStatus, ok bool) {
	t, ok := s.tasks[id]
	if !ok {
		return paas.TaskStatus{}, false
	}
	return t.rec.Status(), true
}

// wait registers res to receive the result of a cached task; ok is false if it is not cached.
func (s *state) wait(id paas.TaskID, res chan<- outcome) (ok bool) {
	t, ok := s.tasks[id]
	if ok {
		t.waiters = append(t.waiters, res)
	}
	return ok
}

// unwait forgets a waiter that left.
func (s *state) unwait(id paas.TaskID, res chan<- outcome) {
	if t, ok := s.tasks[id]; ok {
		t.waiters = slices.DeleteFunc(t.waiters, func(w chan<- outcome) bool { return w == res })
	}
}

func (s *state) summary() paas.StatusSummary {
	c := func(st paas.TaskState) int { return s.counts[slot(st)] }
	return paas.StatusSummary{
		Pending:    c(paas.Pending),
		InProgress: c(paas.InProgress),
		Retrying:   c(paas.Retrying),
		Completed:  c(paas.Completed),
		Failed:     c(paas.Failed),
		Cancelled:  c(paas.Cancelled),
	}
}

// stop stops intake and dispatch. Running handlers go on; queued tasks stay Pending in the store.
func (s *state) stop() { s.stopping = true }

// interrupt cancels every running handler; each task goes back to Pending when its handler returns.
func (s *state) interrupt() {
	for _, t := range s.tasks {
		if t.cancel != nil {
			t.cancel(errInterrupted)
		}
	}
}

// idle reports whether nothing is running or being written, so a stopping loop may exit.
func (s *state) idle() bool { return s.running == 0 && s.inflight == 0 }

// debug logs a task's change at debug level. The fields are built only if the level is on:
// this runs for every change of every task.
func (s *state) debug(msg string, rec paas.TaskRecord) {
	if ce := s.log.Check(zap.DebugLevel, msg); ce != nil {
		ce.Write(taskFields(rec)...)
	}
}

func slot(st paas.TaskState) int { return int(st) - 1 }

func taskFields(rec paas.TaskRecord) []zap.Field {
	return []zap.Field{
		zap.Stringer("task_id", rec.ID),
		zap.String("backend", string(rec.Backend)),
		zap.String("routing_key", string(rec.RoutingKey)),
		zap.Int("attempt", rec.Attempts),
	}
}
