package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/anishathalye/porcupine"

	"github.com/zkpaas/paas"
)

// script holds the attempts that run, so that clients can decide how they end.
type script struct {
	rec     *recorder
	mu      sync.Mutex
	running map[int]*scriptedAttempt // by task
	returns map[int]*returnSignal    // by task
	starts  map[int]*returnSignal    // by task
}

type scriptedAttempt struct {
	end chan outcome // buffer 1: one release, by whoever removed the attempt from running
}

// release ends the attempt of task i, if one runs, with out.
func (s *script) release(i int, out outcome) {
	s.mu.Lock()
	a := s.running[i]
	delete(s.running, i)
	s.mu.Unlock()
	if a != nil {
		a.end <- out
	}
}

// returnSignal is closed at the next return of a task's handler, which returned out.
type returnSignal struct {
	done chan struct{}
	out  outcome
}

// nextReturn is closed when the handler of task i next returns.
func (s *script) nextReturn(i int) *returnSignal { return s.signal(s.returns, i) }

// nextStart is closed when the handler of task i next starts, and can be released.
func (s *script) nextStart(i int) *returnSignal { return s.signal(s.starts, i) }

func (s *script) signal(m map[int]*returnSignal, i int) *returnSignal {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m[i] == nil {
		m[i] = &returnSignal{done: make(chan struct{})}
	}
	return m[i]
}

// fire closes the signal of task i in m; s.mu is held.
func fire(m map[int]*returnSignal, i int, out outcome) {
	if r := m[i]; r != nil {
		r.out = out
		close(r.done)
		delete(m, i)
	}
}

func (s *script) returned(i int, out outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fire(s.returns, i, out)
}

// ctxPausingStore runs the function a call's context carries under pauseKey after each Get.
type ctxPausingStore struct{ paas.BatchStore }

type pauseKey struct{}

func (s ctxPausingStore) Get(ctx context.Context, id paas.TaskID) (paas.TaskRecord, error) {
	rec, err := s.BatchStore.Get(ctx, id)
	if pause, ok := ctx.Value(pauseKey{}).(func()); ok {
		pause()
	}
	return rec, err
}

// releaseAny ends an attempt that runs, if any, with out.
func (s *script) releaseAny(rng *rand.Rand, out outcome) {
	s.mu.Lock()
	tasks := slices.Sorted(mapKeys(s.running))
	s.mu.Unlock()
	if len(tasks) > 0 {
		s.release(tasks[rng.IntN(len(tasks))], out)
	}
}

// releaseAll ends every attempt that runs with out.
func (s *script) releaseAll(out outcome) {
	s.mu.Lock()
	var tasks []int
	for i := range s.running {
		tasks = append(tasks, i)
	}
	s.mu.Unlock()
	for _, i := range tasks {
		s.release(i, out)
	}
}

// scriptedHandler blocks each attempt until a client releases it or its context ends, and
// records when it starts and what it returns.
type scriptedHandler struct {
	s     *script
	epoch int
	lanes historyLanes
}

func (h *scriptedHandler) Prove(ctx context.Context, task paas.Task) error {
	var j histJob
	if err := json.Unmarshal(task.Program, &j); err != nil {
		return paas.Permanent(err)
	}
	rec := h.s.rec
	at := rec.now()
	rec.add(porcupine.Operation{ClientId: h.lanes.handler(j.Task), Input: hIn{Kind: opHandlerStart, Task: j.Task, Epoch: h.epoch},
		Call: at, Output: hOut{}, Return: at})
	a := &scriptedAttempt{end: make(chan outcome, 1)}
	h.s.mu.Lock()
	h.s.running[j.Task] = a
	fire(h.s.starts, j.Task, 0)
	h.s.mu.Unlock()
	var out outcome
	select {
	case out = <-a.end:
	case <-ctx.Done():
		out = outCtxErr
		h.s.mu.Lock()
		if h.s.running[j.Task] == a {
			delete(h.s.running, j.Task)
		}
		h.s.mu.Unlock()
	}
	// The outcome takes effect once the service has stored it, some time after the return:
	// its end is unknown, which porcupine takes as never.
	rec.add(porcupine.Operation{ClientId: h.lanes.handler(j.Task), Input: hIn{Kind: opHandlerReturn, Task: j.Task, Epoch: h.epoch, Outcome: out},
		Call: rec.now(), Output: hOut{}, Return: math.MaxInt64})
	h.s.returned(j.Task, out)
	switch out {
	case outSuccess:
		return nil
	case outPermanent:
		return paas.Permanent(errors.New("scripted permanent failure"))
	case outTransient:
		return errors.New("scripted transient failure")
	}
	return ctx.Err()
}
