package main

import (
	"context"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// latency: Status and Summary answered while 64 goroutines submit at full speed.
func latency(o options, _ int) (values, error) {
	r, err := start("", false, o.capacity, noop, nil)
	if err != nil {
		return nil, err
	}
	defer r.close()
	known, err := submitAll(r.h, 1, -1000, 1000)
	if err != nil {
		return nil, err
	}
	stop := make(chan struct{})
	var submitters sync.WaitGroup
	var next atomic.Int64
	for range o.submitters {
		submitters.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := r.h.Submit(context.Background(), job{N: next.Add(1)}, paas.BackendNative); err != nil {
					return
				}
			}
		})
	}
	var status, summary []time.Duration
	deadline := time.Now().Add(o.latencyFor)
	for time.Now().Before(deadline) {
		t0 := time.Now()
		if _, err := r.h.Status(context.Background(), known[rand.IntN(len(known))]); err != nil {
			close(stop)
			submitters.Wait()
			return nil, err
		}
		t1 := time.Now()
		if _, err := r.h.Summary(context.Background()); err != nil {
			close(stop)
			submitters.Wait()
			return nil, err
		}
		status, summary = append(status, t1.Sub(t0)), append(summary, time.Since(t1))
	}
	close(stop)
	submitters.Wait()
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
	return values{
		"Status p50": us(quantile(status, 0.5)), "Status p99": us(quantile(status, 0.99)),
		"Summary p50": us(quantile(summary, 0.5)), "Summary p99": us(quantile(summary, 0.99)),
	}, nil
}

// gap: one worker, tasks of 200 µs; the time from one task's handler ending to the next one's
// starting, in memory and on bolt.
func gap(o options, round int) (values, error) {
	v := values{}
	for _, durable := range []bool{round%2 == 1, round%2 == 0} {
		var mu sync.Mutex
		var last time.Time
		var gaps []time.Duration
		h := handler.ProofHandlerFunc(func(context.Context, paas.Task) error {
			now := time.Now()
			mu.Lock()
			if !last.IsZero() {
				gaps = append(gaps, now.Sub(last))
			}
			mu.Unlock()
			for time.Since(now) < 200*time.Microsecond {
			}
			mu.Lock()
			last = time.Now()
			mu.Unlock()
			return nil
		})
		dir, err := os.MkdirTemp("", "paas-bench-")
		if err != nil {
			return nil, err
		}
		r, err := start(dir, durable, 1, h, nil)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		ids, err := submitAll(r.h, o.submitters, 0, int64(o.gapTasks))
		if err == nil {
			err = waitAll(r.h, ids)
		}
		r.close()
		os.RemoveAll(dir)
		if err != nil {
			return nil, err
		}
		// The first tasks started while others were still being submitted: keep the gaps of
		// the second half, when all are queued.
		gaps = gaps[len(gaps)/2:]
		name := "gap memory"
		if durable {
			name = "gap bolt"
		}
		v[name+" p50"] = float64(quantile(gaps, 0.5).Nanoseconds()) / 1000
		v[name+" p99"] = float64(quantile(gaps, 0.99).Nanoseconds()) / 1000
	}
	commits, err := commitTimes(o.gapTasks)
	if err != nil {
		return nil, err
	}
	v["one bolt commit p50"] = float64(quantile(commits, 0.5).Nanoseconds()) / 1000
	v["one bolt commit p99"] = float64(quantile(commits, 0.99).Nanoseconds()) / 1000
	return v, nil
}

// commitTimes is the baseline of the gap on bolt: the time of each of n inserts into a new
// bolt file, one a transaction, each synced to disk.
func commitTimes(n int) ([]time.Duration, error) {
	dir, err := os.MkdirTemp("", "paas-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	b, err := openBolt(dir)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	now := time.Now()
	times := make([]time.Duration, 0, n)
	for i := range n {
		rec := taskrec.New("job", []byte(`{"N":`+strconv.Itoa(i)+`}`), paas.BackendNative, now)
		t0 := time.Now()
		if _, err := b.Insert(context.Background(), rec); err != nil {
			return nil, err
		}
		times = append(times, time.Since(t0))
	}
	return times, nil
}

// retries: tasks that fail once with RetryAfter of 2 to 6 s; how late their second attempts
// start after their due times.
func retries(o options, _ int) (values, error) {
	var mu sync.Mutex
	due := make(map[paas.TaskID]time.Time, o.retryTasks)
	var late []time.Duration
	h := handler.ProofHandlerFunc(func(_ context.Context, t paas.Task) error {
		now := time.Now()
		if t.Attempt == 1 {
			d := 2*time.Second + time.Duration(rand.Int64N(int64(4*time.Second)))
			mu.Lock()
			due[t.ID] = now.Add(d)
			mu.Unlock()
			return paas.RetryAfter(errRetry, d)
		}
		mu.Lock()
		late = append(late, now.Sub(due[t.ID]))
		mu.Unlock()
		return nil
	})
	r, err := start("", false, o.capacity, h, &paas.RetryConfig{Jitter: paas.Disabled})
	if err != nil {
		return nil, err
	}
	defer r.close()
	ids, err := submitAll(r.h, o.submitters, 0, int64(o.retryTasks))
	if err != nil {
		return nil, err
	}
	if err := waitAll(r.h, ids); err != nil {
		return nil, err
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return values{
		"retry lateness p50": ms(quantile(late, 0.5)), "retry lateness p99": ms(quantile(late, 0.99)),
		"retry lateness max": ms(quantile(late, 1)),
	}, nil
}

var errRetry = errorString("fails once")

type errorString string

func (e errorString) Error() string { return string(e) }

// restart: Start on a bolt file that holds n unfinished tasks, written once before the
// rounds.
func restart(o options, _ int) (values, error) {
	g := newGate()
	defer g.release()
	t0 := time.Now()
	r, err := start(o.restartDir, true, 1, g, nil)
	if err != nil {
		return nil, err
	}
	took := time.Since(t0)
	// Stop at once: the tasks are left as they were for the next round.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = r.svc.Stop(ctx)
	r.close()
	return values{"Start with the backlog": took.Seconds()}, nil
}

// writeBacklog writes n unfinished tasks to a bolt file in dir, in batches.
func writeBacklog(dir string, n int) error {
	b, err := openBolt(dir)
	if err != nil {
		return err
	}
	defer b.Close()
	now := time.Now().UTC().Truncate(time.Microsecond)
	const batch = 10000
	for first := 0; first < n; first += batch {
		var ws []paas.Write
		for i := first; i < min(first+batch, n); i++ {
			ws = append(ws, paas.Write{Insert: true, Record: taskrec.New("job", []byte(`{"N":`+strconv.Itoa(i)+`}`), paas.BackendNative, now)})
		}
		for _, res := range b.WriteBatch(context.Background(), ws) {
			if res.Err != nil {
				return res.Err
			}
		}
	}
	return nil
}
