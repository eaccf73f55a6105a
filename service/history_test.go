package service_test

import (
	"context"
	"errors"
	"flag"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/clock"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/service"
	"github.com/zkpaas/paas/store/bolt"
	"github.com/zkpaas/paas/store/memory"
)

// TestHistory records the calls of many goroutines on a service's handle, and the events of
// its scripted handlers, across a Stop and a restart on the same store, and checks that the
// history is linearizable against the model of the documented lifecycle (history_model_test.go),
// as etcd checks its API with porcupine. A failing history is written as porcupine's
// visualisation to the test's artifact directory (go test -artifacts keeps it).

var (
	historyOps     = flag.Int("history.ops", 400, "steps of the clients of each TestHistory run; a soak is better many runs (-count) than a long one, which the checker may take long over")
	historyClients = flag.Int("history.clients", 6, "concurrent clients of each TestHistory run")
	historySeed    = flag.Uint64("history.seed", 0, "seed of the clients' choices in TestHistory; 0 picks one")
	historySkip    = flag.String("history.skip", "", "comma-separated calls TestHistory leaves out, to single out a failure: "+
		"BadOptions (Submits with invalid options), Cancel, Retry, Wait, Summary")
)

const (
	historyTasks   = 6 // programs; the whole history, with Summary, is checked over all of them
	historyEpochs  = 2 // the first service, then the one started after it on the same store
	historyWorkers = 2
)

// histJob is the program of task Task.
type histJob struct{ Task int }

func (histJob) RoutingKey() paas.RoutingKey { return "hist" }

func TestHistory(t *testing.T) {
	seed := *historySeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (-history.seed=%d replays the clients' choices, not the interleaving)", seed, seed)
	t.Run("memory", func(t *testing.T) {
		store := memory.New()
		runHistory(t, seed, func(int) paas.TaskStore { return store })
	})
	t.Run("bolt", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "paas.db")
		var open *bolt.Store
		t.Cleanup(func() { _ = open.Close() })
		runHistory(t, seed, func(epoch int) paas.TaskStore {
			if open != nil {
				require.NoError(t, open.Close()) // the next service reads the file afresh
			}
			var err error
			open, err = bolt.Open(path, &bolt.Options{NoSync: true})
			require.NoError(t, err)
			return open
		})
	})
}

// runHistory runs the clients against historyEpochs services in turn, each on the store
// storeFor gives it, and checks the history.
func runHistory(t *testing.T, seed uint64, storeFor func(epoch int) paas.TaskStore) {
	rec := &recorder{}
	sc := &script{rec: rec, running: map[int]*scriptedAttempt{}, returns: map[int]*returnSignal{}, starts: map[int]*returnSignal{}}
	clients := max(*historyClients, 1)
	lanes := historyLanes{clients: clients}
	budget := int64(max(*historyOps/historyEpochs, 4))

	var cur atomic.Pointer[histEpoch]
	newEpoch := func(n int) *histEpoch {
		svc, err := service.New(paas.Config{
			Workers: map[paas.Backend]int64{paas.BackendNative: historyWorkers},
			// One retry, never due on a clock that does not move: a transient failure leaves
			// the task Retrying until it is cancelled.
			Retry: &paas.RetryConfig{MaxRetries: 1, BaseDelay: time.Hour},
			Clock: clock.NewFake(t0),
		}, ctxPausingStore{storeFor(n).(paas.BatchStore)}, map[paas.RoutingKey]handler.ProofHandler{"hist": &scriptedHandler{s: sc, epoch: n, lanes: lanes}})
		require.NoError(t, err)
		// The last steps of each service's budget find it stopped.
		return &histEpoch{n: n, svc: svc, h: svc.Handle(), budget: budget, stopAt: budget * 3 / 4,
			ready: make(chan struct{}), started: make(chan struct{}), stopNow: make(chan struct{}), full: make(chan struct{}), next: make(chan struct{}), idle: make(chan struct{})}
	}

	ids := &taskIDs{ghost: paas.NewTaskID()}
	skip := map[string]bool{}
	for _, name := range strings.Split(*historySkip, ",") {
		skip[strings.TrimSpace(name)] = true
	}
	var wg sync.WaitGroup
	ep := newEpoch(0)
	cur.Store(ep)
	for c := range clients {
		cl := &histClient{id: c, rng: rand.New(rand.NewPCG(seed, uint64(c))), rec: rec, sc: sc, ids: ids, lanes: lanes, wg: &wg, skip: skip, clients: clients}
		wg.Go(func() { cl.run(&cur) })
	}
	for n := 0; ; n++ {
		// Clients call the service before it starts, while it runs, while it stops and once
		// it has stopped.
		<-ep.ready
		call := rec.now()
		err := ep.svc.Start(context.Background())
		rec.add(porcupine.Operation{ClientId: lanes.lifecycle(), Input: hIn{Kind: opStart, Task: globalTask, Epoch: n},
			Call: call, Output: errOut(err), Return: rec.now()})
		require.NoError(t, err)
		close(ep.started)

		<-ep.stopNow
		// Stop with a context that has ended: running handlers are interrupted at once.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		call = rec.now()
		stopWatched(t, ep.svc, ctx, sc)
		ret := rec.now()
		rec.add(porcupine.Operation{ClientId: lanes.lifecycle(), Input: hIn{Kind: opStop, Task: globalTask, Epoch: n},
			Call: call, Output: hOut{}, Return: ret})
		rec.add(porcupine.Operation{ClientId: lanes.lifecycle(), Input: hIn{Kind: opStopped, Task: globalTask, Epoch: n},
			Call: ret, Output: hOut{}, Return: ret})

		<-ep.full
		ep.retire() // no call is left on this service, or on its store
		if n+1 == historyEpochs {
			cur.Store(nil)
			close(ep.next)
			break
		}
		next := newEpoch(n + 1)
		cur.Store(next)
		close(ep.next)
		ep = next
	}
	wg.Wait()
	checkHistory(t, rec.history())
}

// histEpoch is one service of a run, and the clients' steps against it.
type histEpoch struct {
	n       int
	svc     *service.ProverService
	h       service.ProverHandle
	early   atomic.Int64  // clients that have made their step before Start
	ready   chan struct{} // closed once every client has
	started chan struct{} // closed once Start has returned
	tickets atomic.Int64
	budget  int64
	stopAt  int64
	stopNow chan struct{} // closed at ticket stopAt: time to Stop
	full    chan struct{} // closed at ticket budget
	next    chan struct{} // closed once the next service, if any, is current

	mu       sync.Mutex
	inflight int
	retired  bool
	idle     chan struct{} // closed once retired with no call in flight
}

// ticket takes a step of the budget; false if the budget is spent.
func (ep *histEpoch) ticket() bool {
	n := ep.tickets.Add(1)
	switch n {
	case ep.stopAt:
		close(ep.stopNow)
	case ep.budget:
		close(ep.full)
	}
	return n <= ep.budget
}

func (ep *histEpoch) enter() bool {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.retired {
		return false
	}
	ep.inflight++
	return true
}

func (ep *histEpoch) exit() {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.inflight--
	if ep.retired && ep.inflight == 0 {
		close(ep.idle)
	}
}

// retire waits until no call is in flight on the epoch, and lets none start.
func (ep *histEpoch) retire() {
	ep.mu.Lock()
	ep.retired = true
	if ep.inflight == 0 {
		close(ep.idle)
	}
	ep.mu.Unlock()
	<-ep.idle
}

// historyLanes numbers porcupine's clients: the client goroutines, a lane per client for its
// Wait or slow Retry (which run beside it, so that clients do not all end up blocked), one for
// what a slow Retry makes happen meanwhile, one per task for its handler, and one for Start
// and Stop.
type historyLanes struct{ clients int }

func (l historyLanes) waiter(c int) int  { return l.clients + c }
func (l historyLanes) helper(c int) int  { return 2*l.clients + c }
func (l historyLanes) handler(i int) int { return 3*l.clients + i }
func (l historyLanes) lifecycle() int    { return 3*l.clients + maxHistTasks }

// recorder keeps the history. Its clock is logical: a counter taken before a call and after
// it orders the calls as they happened.
type recorder struct {
	clock atomic.Int64
	mu    sync.Mutex
	ops   []porcupine.Operation
}

func (r *recorder) now() int64 { return r.clock.Add(1) }

func (r *recorder) add(op porcupine.Operation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, op)
}

func (r *recorder) history() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ops)
}

// call records f as a call of client with input in.
func (r *recorder) call(client int, in hIn, f func() hOut) {
	c := r.now()
	out := f()
	r.add(porcupine.Operation{ClientId: client, Input: in, Call: c, Output: out, Return: r.now()})
}

// taskIDs are the ids the clients have learnt from Submit.
type taskIDs struct {
	ghost paas.TaskID // names no task
	mu    sync.Mutex
	ids   [historyTasks]paas.TaskID
}

func (t *taskIDs) get(i int) paas.TaskID {
	if i == historyTasks {
		return t.ghost
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ids[i]
}

func (t *taskIDs) set(i int, id paas.TaskID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ids[i] = id
}

type histClient struct {
	id      int
	rng     *rand.Rand
	rec     *recorder
	sc      *script
	ids     *taskIDs
	lanes   historyLanes
	wg      *sync.WaitGroup
	skip    map[string]bool
	clients int
	early   int         // 1 + the last service it has called before that service started
	waiting atomic.Bool // its Wait is under way
}

func (c *histClient) run(cur *atomic.Pointer[histEpoch]) {
	for {
		ep := cur.Load()
		if ep == nil {
			return
		}
		if !ep.ticket() || !ep.enter() {
			<-ep.next
			continue
		}
		c.step(ep)
		ep.exit()
		if c.early < ep.n+1 {
			// Every client makes one step before the service starts, then waits for it.
			c.early = ep.n + 1
			if ep.early.Add(1) == int64(c.clients) {
				close(ep.ready)
			}
			<-ep.started
		}
	}
}

// stopWatchdog bounds how long a Stop whose context has ended may take: it interrupts every
// handler at once, so it returns about at once. The watchdog fires only on a failure.
const stopWatchdog = 10 * time.Second

// stopWatched stops svc with ctx, which has ended. If Stop hangs, some handler was not
// interrupted: the test fails, and releases the handlers so that Stop can return.
func stopWatched(t *testing.T, svc *service.ProverService, ctx context.Context, sc *script) {
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		_ = svc.Stop(ctx)
	}()
	for {
		timer := time.NewTimer(stopWatchdog)
		select {
		case <-stopped:
			timer.Stop()
			return
		case <-timer.C:
			t.Errorf("Stop with an ended context has not returned after %s: a handler it did not interrupt still runs", stopWatchdog)
			sc.releaseAll(outTransient)
		}
	}
}

// step makes one call on ep's handle, or releases a running attempt.
func (c *histClient) step(ep *histEpoch) {
	i := c.rng.IntN(historyTasks)
	if c.rng.IntN(16) == 0 {
		i = historyTasks // the id that names no task
	}
	id := c.ids.get(i)
	ctx := context.Background()
	in := hIn{Task: i, Epoch: ep.n}
	r := c.rng.IntN(100)
	for _, k := range []struct {
		name     string
		from, to int
	}{{"Summary", 25, 30}, {"Cancel", 60, 68}, {"Retry", 68, 87}, {"Wait", 87, 100}} {
		if c.skip[k.name] && r >= k.from && r < k.to {
			r = 50 // Status instead
		}
	}
	switch {
	case r < 25:
		out := []outcome{outSuccess, outPermanent, outPermanent, outPermanent, outTransient}[c.rng.IntN(5)]
		c.sc.releaseAny(c.rng, out)
		return
	case r < 30:
		in.Task = globalTask
		in.Kind = opSummary
		c.rec.call(c.id, in, func() hOut {
			s, err := ep.h.Summary(ctx)
			out := errOut(err)
			out.Summary = s
			return out
		})
		return
	case id.IsZero() || r < 45:
		if i == historyTasks {
			return // never submitted
		}
		in.Kind = opSubmit
		in.Variant = submitVariant(c.rng.IntN(5))
		if c.skip["BadOptions"] && in.Variant.invalidErr() != errNone {
			in.Variant = submitPlain
		}
		opts := map[submitVariant][]paas.SubmitOption{
			submitPriority:   {paas.Priority(7)},
			submitTimeout:    {paas.Timeout(time.Hour)},
			submitBadTimeout: {paas.Timeout(-1)},
			submitUnknownDep: {paas.After(paas.NewTaskID())},
		}[in.Variant]
		c.rec.call(c.id, in, func() hOut {
			got, err := ep.h.Submit(ctx, histJob{Task: i}, paas.BackendNative, opts...)
			out := errOut(err)
			out.ID = got
			if err == nil {
				c.ids.set(i, got)
			}
			return out
		})
	case r < 60:
		in.Kind = opStatus
		c.rec.call(c.id, in, func() hOut {
			st, err := ep.h.Status(ctx, id)
			out := errOut(err)
			out.State = st.State
			return out
		})
	case r < 68:
		in.Kind = opCancel
		c.rec.call(c.id, in, func() hOut { return errOut(ep.h.Cancel(ctx, id)) })
	case r < 87:
		in.Kind = opRetry
		if c.rng.IntN(3) == 0 && c.waiting.CompareAndSwap(false, true) {
			if !ep.enter() {
				c.waiting.Store(false)
				return
			}
			// A slow Retry: once it has read the task from the store, another Retry of the task
			// is made, and the attempt it starts is made to succeed, before the slow one goes
			// on: what the slow one read is stale by then. It runs beside the client.
			pause := c.retryMeanwhile(ep, i, id)
			c.wg.Go(func() {
				defer c.waiting.Store(false)
				defer ep.exit()
				// Only for a task that is Failed or Cancelled, which Retry puts back.
				var st paas.TaskState
				c.rec.call(c.lanes.waiter(c.id), hIn{Kind: opStatus, Task: i, Epoch: ep.n}, func() hOut {
					status, err := ep.h.Status(ctx, id)
					st = status.State
					out := errOut(err)
					out.State = st
					return out
				})
				if st != paas.Failed && st != paas.Cancelled {
					return
				}
				c.rec.call(c.lanes.waiter(c.id), in, func() hOut {
					return errOut(ep.h.Retry(context.WithValue(ctx, pauseKey{}, pause), id))
				})
			})
			return
		}
		c.rec.call(c.id, in, func() hOut { return errOut(ep.h.Retry(ctx, id)) })
	default:
		in.Kind = opWait
		if !c.waiting.CompareAndSwap(false, true) || !ep.enter() {
			c.waiting.Store(false)
			return
		}
		// Wait blocks until the task is final, or the service stops: it runs beside the client.
		c.wg.Go(func() {
			defer c.waiting.Store(false)
			defer ep.exit()
			c.rec.call(c.lanes.waiter(c.id), in, func() hOut {
				res, err := ep.h.Wait(ctx, id)
				out := errOut(err)
				out.State = res.State
				return out
			})
		})
	}
}

// retryMeanwhile returns what a slow Retry of task i does after reading the task: Retry it
// again, make the attempt that starts succeed, and wait until its completion is stored.
func (c *histClient) retryMeanwhile(ep *histEpoch, i int, id paas.TaskID) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			started, returned := c.sc.nextStart(i), c.sc.nextReturn(i)
			var err error
			c.rec.call(c.lanes.helper(c.id), hIn{Kind: opRetry, Task: i, Epoch: ep.n}, func() hOut {
				err = ep.h.Retry(context.Background(), id)
				return errOut(err)
			})
			if err != nil {
				return
			}
			stopping := service.Stopping(ep.svc)
			select {
			case <-started.done:
			case <-stopping:
				return
			}
			c.sc.release(i, outSuccess)
			select {
			case <-returned.done:
			case <-stopping:
				return
			}
			c.rec.call(c.lanes.helper(c.id), hIn{Kind: opWait, Task: i, Epoch: ep.n}, func() hOut {
				res, err := ep.h.Wait(context.Background(), id)
				out := errOut(err)
				out.State = res.State
				return out
			})
		})
	}
}

// errOut sorts err for the model.
func errOut(err error) hOut {
	kinds := []struct {
		err  error
		kind errKind
	}{
		{paas.ErrTaskNotFound, errNotFound},
		{paas.ErrTaskFinished, errFinished},
		{paas.ErrNotRetryable, errNotRetryable},
		{paas.ErrStopped, errStopped},
		{paas.ErrNotStarted, errNotStarted},
		{paas.ErrInvalidOption, errInvalidOption},
		{paas.ErrUnknownDependency, errUnknownDep},
	}
	if err == nil {
		return hOut{}
	}
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			return hOut{Err: k.kind}
		}
	}
	return hOut{Err: errOther, Msg: err.Error()}
}
