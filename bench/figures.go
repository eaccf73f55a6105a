package main

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/internal/taskrec"
	"github.com/zkpaas/paas/store/memory"
)

// A round of a figure gives named values; each value's unit is in its name's entry of units.
type values map[string]float64

// noop is the handler of the throughput figures.
var noop = handler.ProofHandlerFunc(func(context.Context, paas.Task) error { return nil })

// endToEnd: no-op tasks from 64 submitters through the service on a memory store, against
// the bare pool on the same tasks; the two alternate between rounds.
func endToEnd(o options, round int) (values, error) {
	v := values{}
	measure := func(which string) error {
		switch which {
		case "paas":
			r, err := start("", false, o.capacity, noop, nil)
			if err != nil {
				return err
			}
			defer r.close()
			t0 := time.Now()
			ids, err := submitAll(r.h, o.submitters, 0, int64(o.tasks))
			if err != nil {
				return err
			}
			if err := waitAll(r.h, ids); err != nil {
				return err
			}
			v["e2e paas memory"] = float64(o.tasks) / time.Since(t0).Seconds()
		case "pool":
			d := barePool(o.submitters, o.tasks, o.capacity, func() {})
			v["e2e bare pool"] = float64(o.tasks) / d.Seconds()
		}
		return nil
	}
	order := []string{"paas", "pool"}
	if round%2 == 1 {
		order = []string{"pool", "paas"}
	}
	for _, w := range order {
		if err := measure(w); err != nil {
			return nil, err
		}
	}
	v["e2e ratio"] = v["e2e paas memory"] / v["e2e bare pool"]
	return v, nil
}

// drain: n tasks queued behind busy workers, then released; the time per task to drain them,
// for a small and a large backlog, and the heap each queued task holds at the large one.
func drain(o options, round int) (values, error) {
	v := values{}
	sizes := []int{o.small, o.large}
	if round%2 == 1 {
		sizes = []int{o.large, o.small}
	}
	for _, n := range sizes {
		perTask, heap, rss, err := drainOne(o, n)
		if err != nil {
			return nil, err
		}
		if n == o.large {
			v["drain per task, large"] = perTask
			v["heap per queued task"] = heap
			v["RSS, large backlog"] = rss
			v["of which the memory store's"] = storeHeap(n)
			v["the service's own"] = heap - v["of which the memory store's"]
		} else {
			v["drain per task, small"] = perTask
		}
	}
	v["drain ratio"] = v["drain per task, large"] / v["drain per task, small"]
	return v, nil
}

func drainOne(o options, n int) (perTaskMicros, heapPerTask, rssMiB float64, err error) {
	g := newGate()
	r, err := start("", false, o.capacity, g, nil)
	if err != nil {
		return 0, 0, 0, err
	}
	defer r.close()
	defer g.release()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	ids, err := submitAll(r.h, o.submitters, 0, int64(n))
	if err != nil {
		return 0, 0, 0, err
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// The ids slice is the bench's, not the service's.
	held := float64(after.HeapAlloc) - float64(before.HeapAlloc) - float64(n*16)
	heapPerTask = held/float64(n) - float64(payload(int64(n/2)))
	rssMiB = rss()
	t0 := time.Now()
	g.release()
	if err := waitAll(r.h, ids); err != nil {
		return 0, 0, 0, err
	}
	return float64(time.Since(t0).Microseconds()) / float64(n), heapPerTask, rssMiB, nil
}

// backlog: the large backlog queued on a bolt file behind busy workers, as a node holds it
// in production: the heap each queued task holds in the process (the service's cache and
// the store's index of keys; the records are on disk), payload excluded, and the RSS.
func backlog(o options, _ int) (values, error) {
	dir, err := os.MkdirTemp("", "paas-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	debug.FreeOSMemory() // what earlier figures left is not this one's
	g := newGate()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	r, err := start(dir, true, o.capacity, g, nil)
	if err != nil {
		return nil, err
	}
	defer r.close()
	defer g.release()
	ids, err := submitAll(r.h, o.submitters, 0, int64(o.large))
	if err != nil {
		return nil, err
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	held := float64(after.HeapAlloc) - float64(before.HeapAlloc) - float64(len(ids)*16)
	runtime.KeepAlive(ids)
	return values{
		"bolt: heap per queued task": held/float64(o.large) - float64(payload(int64(o.large/2))),
		"bolt: RSS, large backlog":   rss(),
	}, nil
}

// storeHeap is the heap that a memory store holding n queued tasks takes per task, payload
// excluded: the records inserted as the service inserts them, without a service.
func storeHeap(n int) float64 {
	now := time.Now()
	recs := make([]paas.Write, n)
	for i := range recs {
		recs[i] = paas.Write{Insert: true, Record: taskrec.New("job", []byte(`{"N":`+strconv.Itoa(i)+`}`), paas.BackendNative, now)}
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	s := memory.New()
	for first := 0; first < n; first += 1000 {
		s.WriteBatch(context.Background(), recs[first:min(first+1000, n)])
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	held := float64(after.HeapAlloc) - float64(before.HeapAlloc)
	runtime.KeepAlive(s)
	runtime.KeepAlive(recs) // the records are the bench's, allocated before
	return held/float64(n) - float64(payload(int64(n/2)))
}

// rss is this process's resident set, in MiB, from /proc.
func rss() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
