package service

import (
	"context"
	"errors"
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
// world goes to three outboxes (writes, starts, timers) that the run loop drains after every
// step. Tests drive it directly, without channels or timing.
//
// The cache holds the unfinished tasks. A change to a task becomes visible (to Status, waiters,
// dispatch) only when the store has acknowledged its write: propose queues the write, commit
// applies it. A task has at most one write in flight; what happens to it meanwhile (a Cancel, a
// dependency that ends, the end of its handler) is remembered on the task and acted on at
// commit, by settle.
type state struct {
	retry        paas.RetryConfig
	timeouts     map[paas.Backend]time.Duration
	maxInputWait time.Duration
	runnable     func(paas.TaskRecord) error // whether this service can run a task; nil: all
	now          func() time.Time
	log          *zap.Logger

	tasks      map[paas.TaskID]*task
	byKey      map[paas.TaskKey]*task
	inserts    map[paas.TaskKey]*insertion // submits waiting for their insert to commit
	dependents map[paas.TaskID][]*task     // unfinished task → Blocked tasks waiting for it
	queues     map[paas.Backend]*taskQueue // Pending tasks, by priority then submission order
	sems       map[paas.Backend]*semaphore.Weighted

	counts [numStates]int // per state; final states: tasks finished since start and still so
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
	dueAttempt  = iota // a Retrying task, or one Blocked on its input, may run again
	dueDeadline        // the attempt running since then has used up its timeout
	dueRewrite         // the writes that failed may be tried again
)

type task struct {
	rec     paas.TaskRecord // as last committed
	writing bool            // a write is in flight
	queued  bool            // in its backend's queue
	gone    bool            // not inserted (a duplicate, an error) or dropped: ignore it

	run        context.Context         // the handler's context, set while it runs
	cancel     context.CancelCauseFunc // cancels run
	deadline   time.Time               // when run times out; zero if never
	done       *verdict                // the handler's outcome, waiting for a write to commit
	cancelReq  bool                    // the user asked to cancel
	cancelAcks []chan<- error          // Cancel calls answered when the task is final
	cancelled  bool                    // a Cancel has been answered nil: later ones come second
	saveAck    chan<- error            // the SaveCheckpoint call answered at commit
	retryAck   chan<- error            // the Retry call answered when its write commits
	// Retries that came while that write was in flight: answered at its commit, that the task
	// is not finished, or, if it did not take, to try again.
	laterRetries []chan<- error
	counted      bool // revived from a final state already in counts

	deps           int            // dependencies not yet Completed
	failedDep      paas.TaskID    // a dependency that ended Failed or Cancelled
	failedDepState paas.TaskState // its final state, where known

	waiters []chan<- outcome
}

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

func newState(cfg paas.Config, runnable func(paas.TaskRecord) error) *state {
	s := &state{
		retry:        *cfg.Retry,
		timeouts:     cfg.Timeouts,
		maxInputWait: cfg.MaxInputWait,
		runnable:     runnable,
		now:          cfg.Clock.Now,
		log:          cfg.Logger,
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
func (s *state) load(recs []paas.TaskRecord, ended map[paas.TaskID]paas.TaskState) {
	var blocked []*task
	unfinished := make(map[paas.TaskID]bool, len(recs))
	for _, rec := range recs {
		unfinished[rec.ID] = true
	}
	for _, rec := range recs {
		if s.runnable != nil {
			if err := s.runnable(rec); err != nil {
				// Left as it is in the store, to run once a service configured for it starts.
				s.log.Warn("unfinished task not loaded", append(taskFields(rec), zap.Error(err))...)
				continue
			}
		}
		t := s.adopt(&task{rec: rec})
		switch rec.State {
		case paas.Pending:
			s.enqueue(t)
		case paas.Retrying:
			s.schedule(t.rec.ID, rec.NextAttemptAt, dueAttempt)
		case paas.InProgress:
			s.settleAttempt(t, judge(errCrashed, nil, rec, s.retry, s.now(), s.maxInputWait))
		case paas.Blocked:
			blocked = append(blocked, t)
		}
	}
	// Dependencies are resolved once every task is cached, whatever the order of recs.
	for _, t := range blocked {
		if !t.rec.NextAttemptAt.IsZero() {
			s.schedule(t.rec.ID, t.rec.NextAttemptAt, dueAttempt)
			continue
		}
		for _, dep := range t.rec.DependsOn {
			switch st := ended[dep]; {
			case s.tasks[dep] != nil:
				s.await(t, dep)
			case unfinished[dep]:
				t.deps++ // a task this service cannot run: wait for a service that can
			case st == 0:
				// Prune keeps the tasks that unfinished ones depend on, so this one was pruned
				// while the task was being submitted, after Submit had found it Completed.
				s.log.Warn("dependency no longer stored; it had completed", append(taskFields(t.rec), zap.Stringer("dependency", dep))...)
			case st != paas.Completed && t.failedDep.IsZero():
				t.failedDep, t.failedDepState = dep, st
			}
		}
		s.settle(t)
	}
}

func (s *state) adopt(t *task) *task {
	s.tasks[t.rec.ID] = t
	s.byKey[t.rec.Key] = t
	s.counts[slot(t.rec.State)]++
	return t
}

// await makes t wait for dep, a cached unfinished task.
func (s *state) await(t *task, dep paas.TaskID) {
	t.deps++
	s.dependents[dep] = append(s.dependents[dep], t)
}

// submit asks for rec, a new task, to be stored, unless its key is known: identity is decided
// first, and a task that exists is the answer whatever rec's options. If resolved, unfinished
// lists the dependencies of rec that the submitter found unfinished in the store, the others
// having Completed; if not, a task new to the service is answered errResolve, for the
// submitter to look its key up in the store and check its options.
func (s *state) submit(rec paas.TaskRecord, unfinished []paas.TaskID, resolved bool, reply chan<- submitReply) {
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
	if !resolved {
		reply <- submitReply{err: errResolve}
		return
	}
	for _, dep := range unfinished {
		if s.tasks[dep] == nil {
			reply <- submitReply{err: errResolve}
			return
		}
	}
	t := &task{}
	for _, dep := range unfinished {
		s.await(t, dep)
	}
	rec.State = paas.Pending
	if t.deps > 0 {
		rec.State = paas.Blocked
	}
	t.rec = rec
	s.inserts[rec.Key] = &insertion{task: t, replies: []chan<- submitReply{reply}}
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
	if w.err != nil {
		// A Retry is a decision not yet taken, refused like an insert; other updates record
		// what has happened, and are written again.
		if s.rewrites.retryable(w.err) && !s.aborted && t.retryAck == nil {
			s.rewrite(w.Write)
			return
		}
		t.writing = false
		s.dropUnstored(t, w)
		return
	}
	t.writing = false
	s.rewrites.succeeded()
	if t.retryAck != nil {
		t.retryAck <- nil
		t.retryAck = nil
		for _, a := range t.laterRetries {
			a <- fmt.Errorf("%w: task %s was put back by another Retry", paas.ErrNotRetryable, t.rec.ID)
		}
		t.laterRetries = nil
		if !t.counted {
			s.counts[slot(t.rec.State)]++ // for the move out of it below
		}
		delete(s.finished, t.rec.ID)
	}
	if t.saveAck != nil {
		t.saveAck <- nil
		t.saveAck = nil
	}
	if t.cancel != nil {
		// A checkpoint of a running task: nothing else changes.
		t.rec = w.Record
		return
	}
	s.counts[slot(t.rec.State)]--
	s.counts[slot(w.Record.State)]++
	t.rec = w.Record
	s.debug("task "+w.Record.State.String(), w.Record)
	s.settle(t)
}

// dropUnstored gives up on a task whose write the writer gave up on, which it does only when
// the store is closed, the task is gone from it, or Stop stopped waiting. The store still holds
// the previous state, which the next start resumes from; until then the task is left alone.
func (s *state) dropUnstored(t *task, w written) {
	if t.retryAck != nil {
		// A Retry decided on a record read from the store, which did not take: the store
		// keeps the task as it is, and the service holds nothing of it. If it changed since
		// it was read (another Retry), the Retry comes second. Those who found it held
		// meanwhile read it again.
		err := w.err
		if errors.Is(err, paas.ErrConflict) {
			err = errReread
		} else {
			s.log.Error("task retry not persisted", append(taskFields(w.Record), zap.Error(w.err))...)
		}
		t.retryAck <- err
		t.retryAck = nil
		for _, a := range t.laterRetries {
			a <- errResolve // decide again, on the record they read
		}
		for _, w := range t.waiters {
			w <- outcome{err: errReread}
		}
		for _, a := range t.cancelAcks {
			a <- errReread
		}
		s.forget(t)
		return
	}
	s.log.Error("task state not persisted", append(taskFields(w.Record), zap.Error(w.err))...)
	if t.rec.State == paas.Pending && w.Record.State == paas.InProgress {
		s.sems[t.rec.Backend].Release(t.rec.Weight)
	}
	err := fmt.Errorf("paas: task %s: moving it to %s was not stored: %w", t.rec.ID, w.Record.State, w.err)
	if t.saveAck != nil {
		t.saveAck <- err
		t.saveAck = nil
		if t.cancel != nil {
			return // the handler runs on; its outcome will be written, or fail, on its own
		}
	}
	for _, w := range t.waiters {
		w <- outcome{err: err}
	}
	for _, a := range t.cancelAcks {
		a <- err
	}
	s.counts[slot(t.rec.State)]--
	s.forget(t)
}

func (s *state) inserted(w written) {
	in := s.inserts[w.Record.Key]
	delete(s.inserts, w.Record.Key)
	t := in.task
	proposed := t.rec.ID
	var reply submitReply
	switch {
	case w.err != nil:
		reply.err = w.err
	case w.Record.ID != proposed:
		// The store had the key already: that task stands, this one was never created.
		reply.id = w.Record.ID
	default:
		reply.id = w.Record.ID
		t.rec = w.Record
		s.adopt(t)
		s.debug("task submitted", t.rec)
		s.settle(t)
	}
	if reply.err != nil || reply.id != proposed {
		t.gone = true // its dependencies may still list it
	}
	for _, r := range in.replies {
		r <- reply
	}
}

// settle does what a task's newly committed state, and what happened to it meanwhile, asks for.
func (s *state) settle(t *task) {
	st := t.rec.State
	switch {
	case st.Final():
		s.finish(t)
	case t.done != nil:
		// The handler returned while a checkpoint was being written.
		v := *t.done
		t.done = nil
		s.settleAttempt(t, v)
	case t.cancelReq:
		// Cancel arrived while a write was in flight. A task that has just been moved to
		// InProgress has not started its handler yet, so it is cancelled without running,
		// and the attempt it was given is taken back.
		unstarted := st == paas.InProgress
		if unstarted {
			s.sems[t.rec.Backend].Release(t.rec.Weight)
		}
		s.propose(t, paas.Cancelled, func(r *paas.TaskRecord) {
			r.NextAttemptAt = time.Time{}
			if unstarted {
				r.Attempts--
				r.Runs--
			}
		})
	case st == paas.InProgress && s.stopping:
		s.sems[t.rec.Backend].Release(t.rec.Weight)
		s.propose(t, paas.Pending, func(r *paas.TaskRecord) { r.Attempts--; r.Runs-- })
	case st == paas.InProgress:
		s.launch(t)
	case st == paas.Pending:
		s.enqueue(t)
	case st == paas.Retrying:
		s.schedule(t.rec.ID, t.rec.NextAttemptAt, dueAttempt)
	case st == paas.Blocked && !t.rec.NextAttemptAt.IsZero():
		s.schedule(t.rec.ID, t.rec.NextAttemptAt, dueAttempt) // waiting for its input
	case st == paas.Blocked && !t.failedDep.IsZero():
		dep, depState := t.failedDep, t.failedDepState
		s.propose(t, paas.Failed, func(r *paas.TaskRecord) {
			r.FailedDependency, r.FailedDependencyState = dep, depState
			r.LastError = (&paas.DependencyError{ID: dep, State: depState}).Error()
		})
	case st == paas.Blocked && t.deps == 0:
		s.propose(t, paas.Pending, nil)
	}
}

func (s *state) schedule(id paas.TaskID, at time.Time, kind int) {
	s.timers = append(s.timers, scheduler.Due{ID: id, At: at, Kind: kind})
}

func (s *state) enqueue(t *task) {
	if !s.stopping {
		s.queues[t.rec.Backend].push(t)
	}
}

func (s *state) launch(t *task) {
	t.run, t.cancel = context.WithCancelCause(context.Background())
	s.running++
	timeout := t.rec.Timeout
	if timeout == 0 && !t.rec.NoTimeout {
		timeout = s.timeouts[t.rec.Backend]
	}
	t.deadline = time.Time{}
	if timeout > 0 {
		t.deadline = s.now().Add(timeout)
		s.schedule(t.rec.ID, t.deadline, dueDeadline)
	}
	s.starts = append(s.starts, start{ctx: t.run, task: paas.Task{
		ID:         t.rec.ID,
		RoutingKey: t.rec.RoutingKey,
		Backend:    t.rec.Backend,
		Program:    t.rec.Program,
		Attempt:    t.rec.Runs,
		DependsOn:  slices.Clone(t.rec.DependsOn),
		Checkpoint: slices.Clone(t.rec.Checkpoint),
	}})
}

// finish answers everyone waiting on a task that reached a final state, tells its dependents,
// and drops it from the cache: from now on the store alone knows it.
func (s *state) finish(t *task) {
	s.finished[t.rec.ID] = struct{}{}
	res := t.rec.Result()
	for _, w := range t.waiters {
		w <- outcome{res: res}
	}
	// The first Cancel to be answered made the task Cancelled; any other came second.
	for _, a := range t.cancelAcks {
		if t.rec.State == paas.Cancelled && !t.cancelled {
			t.cancelled = true
			a <- nil
		} else {
			a <- paas.ErrTaskFinished
		}
	}
	s.forget(t)
	for _, d := range s.dependents[t.rec.ID] {
		if d.gone {
			continue
		}
		if t.rec.State == paas.Completed {
			d.deps--
		} else if d.failedDep.IsZero() {
			d.failedDep, d.failedDepState = t.rec.ID, t.rec.State
		}
		// A task not yet inserted, or with a write in flight, settles when that commits.
		if !d.writing && s.tasks[d.rec.ID] == d {
			s.settle(d)
		}
	}
	delete(s.dependents, t.rec.ID)
}

func (s *state) forget(t *task) {
	t.queued = false
	t.gone = true
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
	s.write(t, rec)
}

// write queues rec, the next version of t, numbered after the one committed: the store
// applies it only on top of that one.
func (s *state) write(t *task, rec paas.TaskRecord) {
	rec.Version = t.rec.Version + 1
	t.writing = true
	s.inflight++
	s.writes = append(s.writes, paas.Write{Record: rec})
}

// dispatch moves the heads of the backend queues to InProgress while their backend has free
// capacity. Within a backend the head is the task of highest priority, the oldest first among
// equals, and it is strictly first: if it needs more capacity than is free, the tasks behind it
// wait too, even light ones that would fit. So a heavy task is never starved by a stream of
// light ones of its priority or below; only tasks of higher priority overtake it.
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
			s.propose(t, paas.InProgress, func(r *paas.TaskRecord) { r.Attempts++; r.Runs++ })
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
	v := judge(err, cause, t.rec, s.retry, s.now(), s.maxInputWait)
	if v.next == paas.Failed || v.next == paas.Retrying {
		s.log.Warn("attempt failed", append(taskFields(t.rec), zap.Error(err), zap.Stringer("next", v.next))...)
	}
	if t.writing {
		t.done = &v // a checkpoint is being written: one write at a time
		return
	}
	s.settleAttempt(t, v)
}

func (s *state) settleAttempt(t *task, v verdict) {
	s.propose(t, v.next, func(r *paas.TaskRecord) {
		if v.refund {
			r.Attempts--
		}
		if v.restart {
			r.Restarts++
			r.Checkpoint = nil
		}
		if v.interrupted {
			r.Interruptions++
		}
		if v.lastErr != "" {
			r.LastError = v.lastErr
		}
		if v.waiting && r.WaitingSince.IsZero() {
			r.WaitingSince = r.UpdatedAt
		}
		r.NextAttemptAt = time.Time{}
		if v.next == paas.Retrying || v.next == paas.Blocked {
			r.NextAttemptAt = r.UpdatedAt.Add(v.delay)
		}
	})
}

// due handles a scheduler entry whose time has come.
func (s *state) due(d scheduler.Due) {
	if d.Kind == dueRewrite {
		s.rewriteDue()
		return
	}
	t, ok := s.tasks[d.ID]
	if !ok {
		return // ended
	}
	switch d.Kind {
	case dueAttempt:
		st := t.rec.State
		if s.stopping || t.writing || (st != paas.Retrying && st != paas.Blocked) || !t.rec.NextAttemptAt.Equal(d.At) {
			return // left for the next start, or stale: cancelled or rescheduled
		}
		s.propose(t, paas.Pending, func(r *paas.TaskRecord) { r.NextAttemptAt = time.Time{} })
	case dueDeadline:
		if t.cancel != nil && t.deadline.Equal(d.At) {
			t.cancel(errTimedOut)
		}
	}
}

// saveCheckpoint persists a checkpoint for the running attempt of task id.
func (s *state) saveCheckpoint(id paas.TaskID, attempt int, data []byte, ack chan<- error) {
	t, ok := s.tasks[id]
	switch {
	case !ok || t.cancel == nil || t.rec.Runs != attempt:
		ack <- fmt.Errorf("paas: task %s: attempt %d is not running", id, attempt)
		return
	case t.writing:
		ack <- fmt.Errorf("paas: task %s: a checkpoint is being saved already", id)
		return
	}
	rec := t.rec
	rec.Checkpoint = data
	rec.UpdatedAt = s.now()
	t.saveAck = ack
	s.write(t, rec)
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
		t.cancelled = true
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

// revive puts rec, a Failed or Cancelled task read from the store, back to work with a fresh
// budget. unfinished lists its dependencies that the caller found unfinished in the store. ack
// is answered once the change is stored; the write is fenced by rec's Version, so if the task
// has changed since rec was read, nothing is written and ack is answered errReread.
func (s *state) revive(rec paas.TaskRecord, unfinished []paas.TaskID, ack chan<- error) {
	switch {
	case s.stopping:
		ack <- paas.ErrStopped
		return
	case s.tasks[rec.ID] != nil && s.tasks[rec.ID].retryAck != nil:
		// Another Retry's write is in flight: this one comes after it, either way.
		t := s.tasks[rec.ID]
		t.laterRetries = append(t.laterRetries, ack)
		return
	case s.tasks[rec.ID] != nil:
		ack <- fmt.Errorf("%w: task %s is not finished", paas.ErrNotRetryable, rec.ID)
		return
	}
	for _, dep := range unfinished {
		if s.tasks[dep] == nil {
			ack <- errResolve
			return
		}
	}
	// Held, so that other calls wait for the write, but not counted: rec may be stale. A task
	// that finished since the start is in the counts already, and the commit takes it out.
	t := &task{rec: rec, retryAck: ack}
	s.tasks[rec.ID], s.byKey[rec.Key] = t, t
	_, t.counted = s.finished[rec.ID]
	for _, dep := range unfinished {
		s.await(t, dep)
	}
	next := paas.Pending
	if t.deps > 0 {
		next = paas.Blocked
	}
	s.propose(t, next, func(r *paas.TaskRecord) {
		r.LastError, r.FailedDependency = "", paas.TaskID{}
		r.Attempts, r.Restarts, r.Interruptions, r.Runs = 0, 0, 0, 0
		r.FailedDependencyState = 0
		r.NextAttemptAt, r.WaitingSince = time.Time{}, time.Time{}
		r.Checkpoint = nil
	})
}

// status returns a cached task's status; ok is false if the task is not cached.
func (s *state) status(id paas.TaskID) (st paas.TaskStatus, ok bool) {
	t, ok := s.tasks[id]
	if !ok || t.retryAck != nil {
		// Not held, or held for a Retry's write in flight, whose record may be stale: the
		// store has what is true until the write commits.
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
		Blocked:    c(paas.Blocked),
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
	s.aborted = true
	s.giveUpRewrites()
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
		zap.Int("attempt", rec.Runs),
	}
}
