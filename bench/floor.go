package main

import (
	"cmp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/internal/codec"
)

// floor: what the service's shape costs by itself, with none of its work. The shape is fixed:
// a Submit sends its command to the loop and waits for the reply, which comes once the
// writer goroutine has stored the task; the loop starts a handler in a goroutine of its own,
// which hands its outcome back to the loop, which has the writer store it. The skeleton
// below does exactly those hand-offs and nothing else: no store, no state but a queue and a
// count. What it reaches bounds what the service can: its ratio against the bare pool, with
// and without the identity every Submit must compute (a UUID, the program's encoding and its
// key), and its gap on one worker. The gap of a single hand-off, from one goroutine ending to
// a waiting one going on, is measured beside it, with the other core idle and busy: the
// difference is the time the runtime takes to wake an idle core.
func floor(o options, round int) (values, error) {
	v := values{}
	subjects := []string{"skeleton", "identity", "pool"}
	if round%2 == 1 {
		subjects = []string{"pool", "identity", "skeleton"}
	}
	codecOf := paas.Config{}.WithDefaults().Codec
	for _, s := range subjects {
		switch s {
		case "skeleton":
			d, _ := skeleton(o.submitters, o.tasks, o.capacity, nil, func() {})
			v["floor: the shape's hand-offs alone"] = float64(o.tasks) / d.Seconds()
		case "identity":
			identity := func(i int) error {
				enc, err := codec.Encode(codecOf, job{N: int64(i)})
				_, _ = paas.NewTaskID(), paas.KeyOf(job{}.RoutingKey(), enc, paas.BackendNative)
				return err
			}
			d, err := skeleton(o.submitters, o.tasks, o.capacity, identity, func() {})
			if err != nil {
				return nil, err
			}
			v["floor: the hand-offs and the identity"] = float64(o.tasks) / d.Seconds()
		case "pool":
			d := barePool(o.submitters, o.tasks, o.capacity, func() {})
			v["floor: the bare pool"] = float64(o.tasks) / d.Seconds()
		}
	}
	v["floor ratio, hand-offs alone"] = v["floor: the shape's hand-offs alone"] / v["floor: the bare pool"]
	v["floor ratio, with the identity"] = v["floor: the hand-offs and the identity"] / v["floor: the bare pool"]

	var g gapClock
	_, _ = skeleton(1, o.gapTasks, 1, nil, g.work)
	g.report(v, "floor gap, the shape's hand-offs")
	v.handOff(o.gapTasks, false)
	v.handOff(o.gapTasks, true)
	return v, nil
}

// handOff sets the gap of a single hand-off: each task of n runs in a goroutine of its own,
// which the one that started it waits for before starting the next. If busy, a goroutine
// spins on the other core meanwhile, so that the runtime has no idle core to wake.
func (v values) handOff(n int, busy bool) {
	var spinner sync.WaitGroup
	var stop atomic.Bool
	if busy {
		spinner.Go(func() {
			for !stop.Load() {
			}
		})
	}
	var g gapClock
	ended := make(chan struct{}, 1)
	for range n {
		go func() {
			g.work()
			ended <- struct{}{}
		}()
		<-ended
	}
	stop.Store(true)
	spinner.Wait()
	name := "floor gap, one hand-off"
	if busy {
		name += ", the other core busy"
	}
	g.report(v, name)
}

// gapClock times the gaps between tasks of 200 µs run one after another.
type gapClock struct {
	mu   sync.Mutex
	last time.Time
	gaps []time.Duration
}

func (g *gapClock) work() {
	now := time.Now()
	g.mu.Lock()
	if !g.last.IsZero() {
		g.gaps = append(g.gaps, now.Sub(g.last))
	}
	g.mu.Unlock()
	for time.Since(now) < 200*time.Microsecond {
	}
	g.mu.Lock()
	g.last = time.Now()
	g.mu.Unlock()
}

// report sets name's p50 and p99 in v, from the second half of the gaps, as the gap figure
// does.
func (g *gapClock) report(v values, name string) {
	gaps := g.gaps[len(g.gaps)/2:]
	v[name+" p50"] = float64(quantile(gaps, 0.5).Nanoseconds()) / 1000
	v[name+" p99"] = float64(quantile(gaps, 0.99).Nanoseconds()) / 1000
}

// skeleton runs tasks through the service's hand-offs: submitters call identity (if not
// nil; its first error is returned), send a command to the loop and wait for its reply; the loop sends what piled up to a
// writer goroutine whenever it is free, replies to the submitters once the writer answers,
// runs each task's work in a goroutine of its own when one of capacity slots is free, and
// sends the task's outcome to the writer in turn. It returns once every outcome is written.
func skeleton(submitters, tasks int, capacity int64, identity func(int) error, work func()) (time.Duration, error) {
	type submit struct {
		task  int
		reply chan struct{}
	}
	type write struct {
		submit *submit // nil for an outcome
		task   int
	}
	cmds := make(chan *submit)
	batches := make(chan []write)
	results := make(chan []paas.WriteResult)
	ended := make(chan int, capacity)
	done := make(chan struct{})
	var helpers, handlers sync.WaitGroup
	helpers.Go(func() {
		for {
			select {
			case b := <-batches:
				results <- make([]paas.WriteResult, len(b))
			case <-done:
				return
			}
		}
	})
	per := tasks / submitters
	total := per * submitters
	helpers.Go(func() {
		defer close(done)
		var pending, inWriter []write
		var queue []int
		writerBusy := false
		var running int64
		for written := 0; written < total; {
			for running < capacity && len(queue) > 0 {
				t := queue[0]
				queue = queue[1:]
				running++
				handlers.Go(func() {
					work()
					ended <- t
				})
			}
			var toWriter chan<- []write
			if len(pending) > 0 && !writerBusy {
				toWriter = batches
			}
			select {
			case s := <-cmds:
				pending = append(pending, write{submit: s, task: s.task})
			case toWriter <- pending:
				inWriter, pending, writerBusy = pending, nil, true
			case res := <-results:
				writerBusy = false
				for i, w := range inWriter {
					_ = res[i] // the writer's answer, always a success here
					if w.submit != nil {
						w.submit.reply <- struct{}{}
						queue = append(queue, w.task)
					} else {
						written++
					}
				}
				inWriter = nil
			case t := <-ended:
				running--
				pending = append(pending, write{task: t})
			}
		}
	})
	var mu sync.Mutex
	var failed error
	start := time.Now()
	var subs sync.WaitGroup
	for p := range submitters {
		subs.Go(func() {
			for i := range per {
				t := p*per + i
				if identity != nil {
					if err := identity(t); err != nil {
						mu.Lock()
						failed = cmp.Or(failed, err)
						mu.Unlock()
					}
				}
				s := &submit{task: t, reply: make(chan struct{}, 1)}
				cmds <- s
				<-s.reply
			}
		})
	}
	subs.Wait()
	<-done
	d := time.Since(start)
	handlers.Wait()
	helpers.Wait()
	return d, failed
}
