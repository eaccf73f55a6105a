package main

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
)

// span is one proof: when its host started and ended on a backend.
type span struct {
	backend    paas.Backend
	start, end time.Time
}

// meter records the proofs of this run, to tell how busy the provers were and what the
// orchestration between two proofs cost.
type meter struct {
	mu    sync.Mutex
	spans map[paas.TaskID]span // the last successful proof of each task
	all   []span               // every attempt's, successful or not
	ids   map[paas.TaskID]bool // the tasks of those attempts
}

func newMeter() *meter {
	return &meter{spans: make(map[paas.TaskID]span), ids: make(map[paas.TaskID]bool)}
}

func (m *meter) record(id paas.TaskID, s span, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.all = append(m.all, s)
	m.ids[id] = true
	if ok {
		m.spans[id] = s
	}
}

// ran reports whether a host ran for the task in this run, successfully or not.
func (m *meter) ran(id paas.TaskID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.ids[id]
	return ok
}

func (m *meter) proof(id paas.TaskID) (span, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.spans[id]
	return s, ok
}

// errInjected is the transient failure that -fail-rate injects.
var errInjected = errors.New("injected prover fault")

// metered wraps a host: it injects transient faults at the given rate, on first and second
// attempts, lets proofs through as provers free (if slots is set), and records the span of
// every proof.
//
// The slots are the provers: the backend has one worker more than slots, so that the next
// task has its input fetched and waits here while a proof runs, and starts the moment the
// prover frees, instead of after the last proof's writes and the next task's start.
type metered[I any] struct {
	backend paas.Backend
	host    handler.Host[I]
	meter   *meter
	rate    float64
	slots   *semaphore.Weighted
}

// Prove implements handler.Host.
func (h metered[I]) Prove(ctx context.Context, input I) (paas.Proof, error) {
	task, _ := paas.TaskFromContext(ctx)
	if task.Attempt <= 2 && hit(task, h.rate) {
		return paas.Proof{}, errInjected
	}
	if h.slots != nil {
		if err := h.slots.Acquire(ctx, 1); err != nil {
			return paas.Proof{}, err
		}
		defer h.slots.Release(1)
	}
	start := time.Now()
	p, err := h.host.Prove(ctx, input)
	h.meter.record(task.ID, span{backend: h.backend, start: start, end: time.Now()}, err == nil)
	return p, err
}

// hit decides, the same way on every run, whether an attempt of a task fails: by the task's
// backend and program, not its id, which is new in every data directory.
func hit(task paas.Task, rate float64) bool {
	if rate <= 0 {
		return false
	}
	h := fnv.New64a()
	h.Write([]byte(task.Backend))
	h.Write(task.Program)
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(task.Attempt)))
	return float64(h.Sum64()%1_000_000)/1_000_000 < rate
}

// usage is what a backend's provers did in this run.
type usage struct {
	proofs    int
	busy      time.Duration // proving, summed over the attempts
	wall      time.Duration // from the first proof's start to the last one's end
	workers   int64
	gaps      []time.Duration // from a worker freeing to its next proof, while work was queued
	gapsTotal time.Duration
}

// utilisation is busy time over wall time times workers.
func (u usage) utilisation() float64 {
	if u.wall <= 0 || u.workers == 0 {
		return 0
	}
	return float64(u.busy) / (float64(u.wall) * float64(u.workers))
}

// overhead is the orchestration between proofs over the proving time.
func (u usage) overhead() float64 {
	if u.busy <= 0 {
		return 0
	}
	return float64(u.gapsTotal) / float64(u.busy)
}

// usage computes a backend's usage. ready says when each task of the backend could run first:
// a gap counts as orchestration only if, when the worker freed, a task was ready and not yet
// started (a checkpoint waiting for its transitions is not the orchestrator's waste).
func (m *meter) usage(backend paas.Backend, workers int64, ready map[paas.TaskID]time.Time) usage {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := usage{workers: workers}
	var attempts []span
	for _, s := range m.all {
		if s.backend == backend {
			attempts = append(attempts, s)
		}
	}
	if len(attempts) == 0 {
		return u
	}
	starts := make([]time.Time, len(attempts))
	first, last := attempts[0].start, attempts[0].end
	for i, s := range attempts {
		starts[i] = s.start
		u.busy += s.end.Sub(s.start)
		first, last = minTime(first, s.start), maxTime(last, s.end)
	}
	u.wall = last.Sub(first)
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	ends := make([]time.Time, len(attempts))
	for i, s := range attempts {
		ends[i] = s.end
	}
	slices.SortFunc(ends, func(a, b time.Time) int { return a.Compare(b) })

	// Match each end, in order, to the first start after it not matched yet: the worker that
	// freed took that proof next.
	next := 0
	for _, end := range ends {
		for next < len(starts) && starts[next].Before(end) {
			next++
		}
		if next == len(starts) {
			break
		}
		if m.queued(backend, end, ready) {
			gap := starts[next].Sub(end)
			u.gaps = append(u.gaps, gap)
			u.gapsTotal += gap
		}
		next++
	}
	u.proofs = 0
	for _, s := range m.spans {
		if s.backend == backend {
			u.proofs++
		}
	}
	return u
}

// queued reports whether, at t, a task of backend was ready and its proof not started.
func (m *meter) queued(backend paas.Backend, t time.Time, ready map[paas.TaskID]time.Time) bool {
	for id, r := range ready {
		if r.After(t) {
			continue
		}
		s, ok := m.spans[id]
		if ok && s.backend == backend && s.start.After(t) {
			return true
		}
	}
	return false
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
