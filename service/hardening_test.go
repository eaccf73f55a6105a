package service_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/service"
	"github.com/zkpaas/paas/store/memory"
)

// The edges of the handle's contract, each as a user meets it.

// failed submits name and fails it permanently.
func (f *fixture) failed(name string) paas.TaskID {
	f.t.Helper()
	id := f.submit(name)
	f.gate.next(f.t).answer <- paas.Permanent(errors.New("bad input"))
	require.Equal(f.t, paas.Failed, f.wait(id).State)
	return id
}

func TestRetryReturnsOnlyOnceItsChangeIsStored(t *testing.T) {
	store := newPausingStore()
	f := startOn(t, store)
	id := f.failed("a")
	store.armedWrite.Store(true)
	retried := make(chan error, 1)
	go func() { retried <- f.h.Retry(f.ctx, id) }()
	<-store.entered // the Retry's write is with the store, not yet committed
	select {
	case err := <-retried:
		t.Fatalf("Retry returned %v before its change was stored", err)
	default:
	}
	store.release <- struct{}{}
	require.NoError(t, <-retried)
	rec, err := store.Store.Get(f.ctx, id)
	require.NoError(t, err)
	assert.NotEqual(t, paas.Failed, rec.State, "once Retry returns, the store has the task back at work")
	assert.Empty(t, rec.LastError)
	f.gate.next(t).answer <- nil
	assert.Equal(t, paas.Completed, f.wait(id).State)
}

// A Retry is a decision not yet taken: a store that fails it makes Retry return its error at
// once, and the task stays as it was.
func TestRetryOnAFailingStoreReturnsItsError(t *testing.T) {
	f, fs, inner := faulty(t)
	id := f.failed("a")
	boom := errors.New("no space left on device")
	fs.FailBatches(1, boom)
	require.ErrorIs(t, f.h.Retry(f.ctx, id), boom)
	rec, err := inner.Get(f.ctx, id)
	require.NoError(t, err)
	assert.Equal(t, paas.Failed, rec.State)
	assert.Equal(t, paas.Failed, f.wait(id).State)
	assert.Equal(t, paas.StatusSummary{Failed: 1}, f.summary())
	require.NoError(t, f.h.Retry(f.ctx, id), "once the store recovers")
	f.gate.next(t).answer <- nil
	assert.Equal(t, paas.Completed, f.wait(id).State)
}

// Of two Retries of one task, the one decided on a record read before the other put the task
// back, and before the task then completed, must not bring it back to work: its write is
// fenced by the version it read.
func TestARetryDecidedOnAStaleRecordNeverOverwritesACompletedTask(t *testing.T) {
	store := newPausingStore()
	f := startOn(t, store)
	id := f.failed("a")
	store.afterRead = true
	store.armed.Store(true)
	late := make(chan error, 1)
	go func() { late <- f.h.Retry(f.ctx, id) }()
	<-store.entered // the late Retry has read the task Failed

	require.NoError(t, f.h.Retry(f.ctx, id))
	f.gate.next(t).answer <- nil
	require.Equal(t, paas.Completed, f.wait(id).State)
	store.release <- struct{}{}
	assert.ErrorIs(t, <-late, paas.ErrNotRetryable, "the late Retry reads the task again, and finds it Completed")
	rec, err := store.Store.Get(f.ctx, id)
	require.NoError(t, err)
	assert.Equal(t, paas.Completed, rec.State, "the completed task is not overwritten")
	select {
	case a := <-f.gate.started:
		t.Fatalf("the completed task ran again: %v", a.task)
	default:
	}
	assert.Equal(t, paas.StatusSummary{Completed: 1}, f.summary())
}

func TestProgramsThatDifferOnlyInInvalidUTF8AreRefused(t *testing.T) {
	f := start(t, nil)
	for _, name := range []string{"\xff", "\xfe", "ok\x80"} {
		_, err := f.h.Submit(f.ctx, job{Name: name}, paas.BackendNative)
		assert.ErrorIs(t, err, paas.ErrEncodeProgram, "%q does not decode back to itself", name)
	}
	assert.Equal(t, 0, f.store.Len(), "nothing refused is stored")
	f.submit("valid UTF-8: ünïcödé")
}

func TestDuplicateSubmitIgnoresItsOptions(t *testing.T) {
	f := start(t, nil)
	bad := f.failed("bad")
	done := f.submit("done")
	f.gate.next(t).answer <- nil
	f.wait(done)
	running := f.submit("running")
	a := f.gate.next(t)
	defer func() { a.answer <- nil }()

	for _, existing := range []struct {
		name string
		id   paas.TaskID
	}{{"done", done}, {"running", running}, {"bad", bad}} {
		for _, opt := range []paas.SubmitOption{paas.After(bad), paas.After(paas.NewTaskID()), paas.After(existing.id), paas.Priority(99), paas.Timeout(-1), paas.After(paas.TaskID{})} {
			id, err := f.h.Submit(f.ctx, job{Name: existing.name}, paas.BackendNative, opt)
			require.NoError(t, err, "a Submit of the %s task", existing.name)
			assert.Equal(t, existing.id, id, "identity is decided first")
		}
	}
}

func TestPruneKeepsTheDependencyOfABlockedTaskAcrossARestart(t *testing.T) {
	store := memory.New()
	f := start(t, store, workers(map[paas.Backend]int64{paas.BackendNative: 2}))
	dep := f.submit("dep")
	f.gate.next(t).answer <- nil
	f.wait(dep)
	slow := f.submit("slow")
	a := f.gate.next(t)
	blocked, err := f.h.Submit(f.ctx, job{Name: "blocked"}, paas.BackendNative, paas.After(dep, slow))
	require.NoError(t, err)
	require.Equal(t, paas.Blocked, f.status(blocked).State)

	f.clock.Advance(time.Hour)
	n, err := f.h.Prune(f.ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, 0, n, "the completed dependency of a blocked task is kept")
	stopped := make(chan error, 1)
	go func() { stopped <- f.svc.Stop(context.Background()) }()
	a.answer <- errors.New("interrupted") // let Stop finish; slow is retried
	require.NoError(t, <-stopped)

	g := start(t, store, workers(map[paas.Backend]int64{paas.BackendNative: 2}))
	assert.Equal(t, paas.Blocked, g.status(blocked).State, "the blocked task still waits, rather than failing")
	g.clock.Advance(3 * time.Hour) // slow's retry is due
	g.gate.next(t).answer <- nil
	b := g.gate.next(t)
	assert.Equal(t, blocked, b.task.ID)
	b.answer <- nil
	assert.Equal(t, paas.Completed, g.wait(blocked).State)
}

// stubborn is a handler that ignores cancellation, as gnark's Prove (which takes no context)
// does: it returns only when release is closed.
type stubborn struct {
	started chan struct{}
	release chan struct{}
}

func (s *stubborn) Prove(context.Context, paas.Task) error {
	s.started <- struct{}{}
	<-s.release
	return nil
}

func TestStopReturnsSoonAfterItsContextEndsWhateverTheHandlers(t *testing.T) {
	store := memory.New()
	h := &stubborn{started: make(chan struct{}), release: make(chan struct{})}
	svc, err := service.New(paas.Config{Workers: map[paas.Backend]int64{paas.BackendNative: 2}}, store,
		map[paas.RoutingKey]handler.ProofHandler{"job": h})
	require.NoError(t, err)
	require.NoError(t, svc.Start(t.Context()))
	for _, name := range []string{"a", "b"} {
		_, err := svc.Handle().Submit(t.Context(), job{Name: name}, paas.BackendNative)
		require.NoError(t, err)
		<-h.started
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = svc.Stop(ctx)
	var abandoned *paas.AbandonedError
	require.ErrorAs(t, err, &abandoned, "Stop must not wait for handlers that ignore cancellation")
	assert.Equal(t, 2, abandoned.Handlers)
	assert.ErrorIs(t, err, context.Canceled)
	select {
	case <-svc.Stopped():
		t.Fatal("Stopped closed while handlers still run")
	default:
	}
	_, err = svc.Handle().Status(t.Context(), paas.NewTaskID())
	assert.ErrorIs(t, err, paas.ErrStopped)

	recs, err := store.Unfinished(t.Context())
	require.NoError(t, err)
	assert.Len(t, recs, 2, "the abandoned tasks stay InProgress, for the next start to recover")
	close(h.release)
	<-svc.Stopped()
	recs, err = store.Unfinished(t.Context())
	require.NoError(t, err)
	assert.Empty(t, recs, "handlers that return before the process exits still have their outcome stored")
}

func TestStopBeforeStartClosesStopped(t *testing.T) {
	svc, err := service.New(paas.Config{Workers: map[paas.Backend]int64{paas.BackendNative: 1}}, memory.New(),
		map[paas.RoutingKey]handler.ProofHandler{"job": newGate()})
	require.NoError(t, err)
	require.NoError(t, svc.Stop(t.Context()))
	<-svc.Stopped()
	assert.ErrorIs(t, svc.Start(t.Context()), paas.ErrStopped)
}

// Every handle method checks the lifecycle before anything else, whatever its arguments.
func TestEveryHandleMethodChecksTheLifecycleFirst(t *testing.T) {
	store := memory.New()
	svc, err := service.New(paas.Config{Workers: map[paas.Backend]int64{paas.BackendNative: 1}}, store,
		map[paas.RoutingKey]handler.ProofHandler{"job": newGate()})
	require.NoError(t, err)
	h := svc.Handle()
	ctx := t.Context()
	calls := map[string]func(paas.TaskID) error{
		"Submit":  func(paas.TaskID) error { _, err := h.Submit(ctx, job{Name: "\xff"}, "no such backend"); return err },
		"Execute": func(paas.TaskID) error { _, err := h.Execute(ctx, job{Name: "x"}, paas.BackendNative); return err },
		"Wait":    func(id paas.TaskID) error { _, err := h.Wait(ctx, id); return err },
		"Status":  func(id paas.TaskID) error { _, err := h.Status(ctx, id); return err },
		"Summary": func(paas.TaskID) error { _, err := h.Summary(ctx); return err },
		"Cancel":  func(id paas.TaskID) error { return h.Cancel(ctx, id) },
		"Retry":   func(id paas.TaskID) error { return h.Retry(ctx, id) },
		"Prune":   func(paas.TaskID) error { _, err := h.Prune(ctx, 0); return err },
	}
	failed := paas.NewTaskID()
	for name, call := range calls {
		assert.ErrorIs(t, call(paas.NewTaskID()), paas.ErrNotStarted, "%s before Start", name)
	}

	require.NoError(t, svc.Start(ctx))
	id, err := h.Submit(ctx, job{Name: "done"}, paas.BackendNative)
	require.NoError(t, err)
	require.ErrorIs(t, svc.Stop(canceled()), context.Canceled) // its attempt is interrupted
	<-svc.Stopped()
	before := store.Len()
	for name, call := range calls {
		assert.ErrorIs(t, call(id), paas.ErrStopped, "%s after Stop", name)
		assert.ErrorIs(t, call(failed), paas.ErrStopped, "%s after Stop, of an unknown task", name)
	}
	assert.Equal(t, before, store.Len(), "Prune after Stop deletes nothing")
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestRetryWhileStoppingSaysStopped(t *testing.T) {
	f := start(t, nil)
	id := f.failed("a")
	busy := f.submit("busy")
	a := f.gate.next(t)
	stopped := make(chan error, 1)
	go func() { stopped <- f.svc.Stop(context.Background()) }()
	<-service.Stopping(f.svc)
	assert.ErrorIs(t, f.h.Retry(f.ctx, id), paas.ErrStopped)
	a.answer <- nil
	require.NoError(t, <-stopped)
	_ = busy
}

func TestNewRefusesNilHandlers(t *testing.T) {
	cfg := paas.Config{Workers: map[paas.Backend]int64{paas.BackendNative: 1}}
	for name, h := range map[string]handler.ProofHandler{
		"nil func":    handler.ProofHandlerFunc(nil),
		"nil pointer": (*handler.RemoteProofHandler[job, int])(nil),
		"nil":         nil,
	} {
		_, err := service.New(cfg, memory.New(), map[paas.RoutingKey]handler.ProofHandler{"job": h})
		assert.ErrorIs(t, err, paas.ErrInvalidConfig, name)
	}
}

func TestTimeoutZeroOptsOutOfTheBackendDefault(t *testing.T) {
	f := start(t, nil, func(c *paas.Config) { c.Timeouts = map[paas.Backend]time.Duration{paas.BackendNative: time.Minute} },
		workers(map[paas.Backend]int64{paas.BackendNative: 2}))
	_, err := f.h.Submit(f.ctx, job{Name: "none"}, paas.BackendNative, paas.Timeout(0))
	require.NoError(t, err)
	none := f.gate.next(t)
	f.submit("default")
	def := f.gate.next(t)
	require.NoError(t, f.clock.WaitForTimers(f.ctx, 1)) // the one deadline: the default task's
	f.clock.Advance(time.Hour)
	<-def.ctx.Done()
	assert.NoError(t, none.ctx.Err(), "a task submitted with Timeout(0) has no timeout")
	none.answer <- nil
	f.wait(none.task.ID)
}

func TestSummaryCountsARetriedTaskOnce(t *testing.T) {
	f := start(t, nil)
	id := f.failed("a")
	require.NoError(t, f.h.Retry(f.ctx, id))
	f.gate.next(t).answer <- nil
	f.wait(id)
	assert.Equal(t, paas.StatusSummary{Completed: 1}, f.summary())
}

func TestTwoCancelsOfAWaitingTaskOneSucceedsOneFindsItFinished(t *testing.T) {
	f := start(t, nil)
	f.submit("busy")
	busy := f.gate.next(t)
	defer func() { busy.answer <- nil }()
	for i := range 20 {
		id, err := f.h.Submit(f.ctx, job{Name: "waiting"}, paas.BackendNative, paas.Priority(i))
		require.NoError(t, err)
		errs := make(chan error, 2)
		for range 2 {
			go func() { errs <- f.h.Cancel(f.ctx, id) }()
		}
		e1, e2 := <-errs, <-errs
		if e1 != nil {
			e1, e2 = e2, e1
		}
		require.NoError(t, e1)
		require.ErrorIs(t, e2, paas.ErrTaskFinished)
		require.NoError(t, f.h.Retry(f.ctx, id)) // waiting again, for the next round
	}
}

// pausingStore holds up the next Get once armed, until the test lets it go on: a caller that
// has found a task not held by the service reads the store only after the test has acted.
type pausingStore struct {
	*memory.Store
	armed      atomic.Bool
	afterRead  bool        // hold the Get up once it has read, rather than before
	armedWrite atomic.Bool // hold the next WriteBatch up before it writes
	entered    chan struct{}
	release    chan struct{}
}

func newPausingStore() *pausingStore {
	return &pausingStore{Store: memory.New(), entered: make(chan struct{}), release: make(chan struct{})}
}

func (s *pausingStore) WriteBatch(ctx context.Context, writes []paas.Write) []paas.WriteResult {
	if s.armedWrite.CompareAndSwap(true, false) {
		s.entered <- struct{}{}
		<-s.release
	}
	return s.Store.WriteBatch(ctx, writes)
}

func (s *pausingStore) Get(ctx context.Context, id paas.TaskID) (paas.TaskRecord, error) {
	if !s.armed.CompareAndSwap(true, false) {
		return s.Store.Get(ctx, id)
	}
	var (
		rec paas.TaskRecord
		err error
	)
	if s.afterRead {
		rec, err = s.Store.Get(ctx, id)
	}
	s.entered <- struct{}{}
	<-s.release
	if s.afterRead {
		return rec, err
	}
	return s.Store.Get(ctx, id)
}

// Wait and Cancel racing a Retry of the same task wait and cancel: a task that the service no
// longer held when they looked, and that a Retry put back before they read the store, is
// waited for or cancelled, never reported with an untyped error.
func TestWaitAndCancelRacingARetryWaitAndCancel(t *testing.T) {
	store := newPausingStore()
	f := startOn(t, store)
	for _, call := range []string{"Wait", "Cancel"} {
		id := f.failed(call)
		store.armed.Store(true)
		done := make(chan error, 1)
		var res paas.TaskResult
		go func() {
			var err error
			if call == "Wait" {
				res, err = f.h.Wait(f.ctx, id)
			} else {
				err = f.h.Cancel(f.ctx, id)
			}
			done <- err
		}()
		<-store.entered // it found the task not held, and is about to read the store
		require.NoError(t, f.h.Retry(f.ctx, id))
		a := f.gate.next(t)
		store.release <- struct{}{}
		if call == "Wait" {
			a.answer <- nil
			require.NoError(t, <-done, "Wait must wait for a task a Retry put back")
			assert.Equal(t, paas.Completed, res.State)
		} else {
			require.NoError(t, <-done, "Cancel must cancel a task a Retry put back")
			assert.Equal(t, paas.Cancelled, f.wait(id).State)
		}
	}
}

func TestAttemptCountsEveryAttemptAndDependencyErrorsCarryTheState(t *testing.T) {
	f := start(t, nil, retry(paas.RetryConfig{MaxRetries: 3, MaxRestarts: 3, BaseDelay: time.Second, Jitter: paas.Disabled}))
	id := f.submit("a")
	a := f.gate.next(t)
	assert.Equal(t, 1, a.task.Attempt)
	a.answer <- paas.Restart(errors.New("request lost"))
	require.NoError(t, f.clock.WaitForTimers(f.ctx, 1))
	f.clock.Advance(time.Minute)
	a = f.gate.next(t)
	assert.Equal(t, 2, a.task.Attempt, "a Restart is an attempt too")
	st := f.status(id)
	assert.Equal(t, 1, st.Attempts, "though it spends no retry: only the attempt in progress counts")
	assert.Equal(t, 1, st.Restarts)
	dependent, err := f.h.Submit(f.ctx, job{Name: "b"}, paas.BackendNative, paas.After(id))
	require.NoError(t, err)
	require.NoError(t, f.h.Cancel(f.ctx, id))
	res := f.wait(dependent)
	var dep *paas.DependencyError
	require.ErrorAs(t, res.Err(), &dep)
	assert.Equal(t, id, dep.ID)
	assert.Equal(t, paas.Cancelled, dep.State, "the dependency's final state")
}
