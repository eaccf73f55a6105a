package main

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/internal/taskrec"
)

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
