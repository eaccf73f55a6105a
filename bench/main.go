// Command bench measures what paas costs, and prints one table: each figure's minimum,
// median and maximum over the rounds, with every ratio taken within a round against the
// baseline measured in that round, the two alternating in order from round to round.
//
//	go run ./bench                   # the sizes of BENCHMARKS.md, a few minutes
//	go run ./bench -quick            # small sizes, seconds: a smoke run
//	go run ./bench -only e2e,drain   # some figures
//
// The figures: e2e (no-op tasks end to end, in memory, against a bare pool), drain (the time
// per task to drain a small and a large backlog, and the heap and RSS a queued task costs),
// backlog (the heap and RSS of the large backlog queued on bolt), latency (Status and Summary
// while 64 goroutines submit), gap (from one task ending to the next starting on one worker,
// in memory and on bolt, beside the time of one bolt commit on the same disk), retry (how
// late retries start after their due time), restart (Start on a bolt file with a large
// backlog) and floor (what the service's shape of goroutines and hand-offs costs with none of
// its work: a bound on the e2e and gap figures). Those of throughput and memory are in
// figures.go, those of time in timing.go, the floor in floor.go.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zkpaas/paas/store/bolt"
)

type options struct {
	rounds     int
	submitters int
	capacity   int64
	tasks      int
	small      int
	large      int
	latencyFor time.Duration
	gapTasks   int
	retryTasks int
	restart    int
	restartDir string
	only       string
}

// units gives each value's unit; the order of the table is this one.
var units = []struct{ name, unit string }{
	{"e2e paas memory", "/s"}, {"e2e bare pool", "/s"}, {"e2e ratio", "x"},
	{"drain per task, small", "µs"}, {"drain per task, large", "µs"}, {"drain ratio", "x"},
	{"heap per queued task", "B"}, {"of which the memory store's", "B"}, {"the service's own", "B"},
	{"RSS, large backlog", "MiB"},
	{"bolt: heap per queued task", "B"}, {"bolt: RSS, large backlog", "MiB"},
	{"Status p50", "µs"}, {"Status p99", "µs"}, {"Summary p50", "µs"}, {"Summary p99", "µs"},
	{"gap memory p50", "µs"}, {"gap memory p99", "µs"}, {"gap bolt p50", "µs"}, {"gap bolt p99", "µs"},
	{"one bolt commit p50", "µs"}, {"one bolt commit p99", "µs"},
	{"retry lateness p50", "ms"}, {"retry lateness p99", "ms"}, {"retry lateness max", "ms"},
	{"Start with the backlog", "s"},
	{"floor: the shape's hand-offs alone", "/s"}, {"floor: the hand-offs and the identity", "/s"},
	{"floor: the bare pool", "/s"}, {"floor ratio, hand-offs alone", "x"}, {"floor ratio, with the identity", "x"},
	{"floor gap, the shape's hand-offs p50", "µs"}, {"floor gap, the shape's hand-offs p99", "µs"},
	{"floor gap, one hand-off p50", "µs"}, {"floor gap, one hand-off p99", "µs"},
	{"floor gap, one hand-off, the other core busy p50", "µs"}, {"floor gap, one hand-off, the other core busy p99", "µs"},
}

var figures = []struct {
	name string
	run  func(options, int) (values, error)
}{
	{"e2e", endToEnd}, {"drain", drain}, {"backlog", backlog}, {"latency", latency}, {"gap", gap}, {"retry", retries}, {"restart", restart}, {"floor", floor},
}

func main() {
	var o options
	quick := flag.Bool("quick", false, "small sizes: a smoke run of every figure")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of each figure")
	flag.IntVar(&o.submitters, "submitters", 64, "concurrent submitters")
	flag.Int64Var(&o.capacity, "capacity", 100, "workers of the service, and size of the bare pool's semaphore")
	flag.IntVar(&o.tasks, "tasks", 200_000, "tasks of the end-to-end figure")
	flag.IntVar(&o.small, "small", 10_000, "the small backlog of the drain figure")
	flag.IntVar(&o.large, "large", 1_000_000, "the large backlog of the drain figure")
	flag.DurationVar(&o.latencyFor, "latency-for", 3*time.Second, "how long the latency figure samples")
	flag.IntVar(&o.gapTasks, "gap-tasks", 2_000, "tasks of the gap figure")
	flag.IntVar(&o.retryTasks, "retry-tasks", 100_000, "tasks of the retry figure")
	flag.IntVar(&o.restart, "restart", 1_000_000, "unfinished tasks in the bolt file of the restart figure")
	flag.StringVar(&o.only, "only", "", "comma-separated figures to run; empty: all")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	memProfile := flag.String("memprofile", "", "write an allocation profile at the end to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if *memProfile != "" {
		runtime.MemProfileRate = 64 << 10
		defer func() {
			if f, err := os.Create(*memProfile); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	if *quick {
		o.rounds, o.tasks, o.small, o.large, o.latencyFor = 2, 20_000, 1_000, 10_000, 300*time.Millisecond
		o.gapTasks, o.retryTasks, o.restart = 200, 1_000, 10_000
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(o options) error {
	want := func(name string) bool {
		return o.only == "" || slices.Contains(strings.Split(o.only, ","), name)
	}
	if want("restart") {
		dir, err := os.MkdirTemp("", "paas-bench-restart-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		fmt.Fprintf(os.Stderr, "writing %d unfinished tasks to a bolt file...\n", o.restart)
		if err := writeBacklog(dir, o.restart); err != nil {
			return err
		}
		o.restartDir = dir
	}
	got := map[string]sample{}
	for round := range o.rounds {
		for _, f := range figures {
			if !want(f.name) {
				continue
			}
			fmt.Fprintf(os.Stderr, "round %d: %s\n", round+1, f.name)
			v, err := f.run(o, round)
			if err != nil {
				return fmt.Errorf("%s: %w", f.name, err)
			}
			for k, x := range v {
				got[k] = append(got[k], x)
			}
		}
	}
	fmt.Printf("paas bench: %d rounds, %d submitters, capacity %d; e2e %d tasks; backlogs %d and %d; retries %d; restart %d\n\n",
		o.rounds, o.submitters, o.capacity, o.tasks, o.small, o.large, o.retryTasks, o.restart)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "figure\tmin\tmedian\tmax\t")
	for _, u := range units {
		s, ok := got[u.name]
		if !ok {
			continue
		}
		lo, med, hi := s.minMedMax()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", u.name, format(lo, u.unit), format(med, u.unit), format(hi, u.unit))
	}
	return tw.Flush()
}

func openBolt(dir string) (*bolt.Store, error) { return bolt.Open(filepath.Join(dir, "bench.db"), nil) }
