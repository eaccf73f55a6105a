// Command river compares paas on bolt with River on PostgreSQL, on the same no-op work and
// the same machine, both durable with their stock settings (bolt syncs every commit;
// PostgreSQL runs with fsync and synchronous_commit on). It prints one table: each figure's
// minimum, median and maximum over the rounds, the subjects alternating in order from round
// to round, and every ratio taken within a round.
//
//	cd bench/river && go run .                    # 3 rounds of 100,000 tasks, a few minutes
//	cd bench/river && go run . -quick             # a smoke run, seconds
//	cd bench/river && go run . -only paas,burndown
//	cd bench/river && go run . -pg postgres://user@127.0.0.1:5432/db   # a server of yours
//
// Without -pg the program starts a PostgreSQL server of its own: initdb in a temporary
// directory (as the user postgres when run as root) and pg_ctl start on 127.0.0.1 and a free
// port, with the stock settings; it stops the server and removes the directory at the end,
// also after an error or a Ctrl-C. It needs the Debian package postgresql. On a server given
// with -pg it works in a schema of its own, paas_bench_river, which it drops at the end.
//
// The subjects, each on -tasks tasks or jobs a round:
//   - paas (paas bolt e2e): -submitters goroutines Submit distinct no-op tasks to a service
//     with -capacity workers on a new bolt file; from the first Submit until every task's
//     Wait has returned.
//   - burndown (River burn-down): the jobs are inserted first (InsertMany, not timed); then
//     a client with -workers workers on one queue, a fetch cooldown of 2 ms and a poll
//     interval of 20 ms (the settings of River's own benchmark) works them; from Start until
//     River reports the last completion stored. The table must then hold every job completed.
//   - e2e (River e2e): the same client on an empty table, while -submitters goroutines
//     Insert one job a call; from Start until the last completion, checked the same way.
//
// River's pool has -conns connections to the server.
//
// This is a module of its own so that River and pgx stay out of paas's dependencies.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
)

type options struct {
	rounds     int
	tasks      int
	submitters int
	workers    int
	capacity   int64
	conns      int
	only       string
	pg         string
}

// The figures in the table's order, and their units.
const (
	paasE2E       = "paas bolt e2e"
	riverBurn     = "River burn-down"
	riverE2E      = "River e2e"
	ratioBurnDown = "paas / River burn-down"
	ratioE2E      = "paas / River e2e"
)

// subject is one figure of a round: it runs the work and returns its rate.
type subject struct {
	flag string // its name in -only
	name string
	run  func(context.Context, options) (float64, error)
}

var units = []struct{ name, unit string }{
	{paasE2E, "/s"}, {riverBurn, "/s"}, {riverE2E, "/s"}, {ratioBurnDown, "x"}, {ratioE2E, "x"},
}

func main() {
	var o options
	quick := flag.Bool("quick", false, "a smoke run of seconds: 2 rounds of 2,000 jobs")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each measures every subject once")
	flag.IntVar(&o.tasks, "tasks", 100_000, "tasks (jobs) of each subject in a round")
	flag.IntVar(&o.submitters, "submitters", 64, "concurrent submitters of the end-to-end figures")
	flag.IntVar(&o.workers, "workers", 2_000, "River's workers on its queue")
	flag.Int64Var(&o.capacity, "capacity", 100, "paas's workers on its backend")
	flag.IntVar(&o.conns, "conns", 16, "connections in River's pool to PostgreSQL")
	flag.StringVar(&o.only, "only", "", "comma-separated subjects to measure (paas, burndown, e2e); empty: all")
	flag.StringVar(&o.pg, "pg", "", "URL of a PostgreSQL server to use instead of starting one")
	flag.Parse()
	if *quick {
		o.rounds, o.tasks = 2, 2_000
	}
	if o.rounds < 1 || o.tasks < 1 || o.submitters < 1 || o.workers < 1 || o.capacity < 1 || o.conns < 1 {
		fmt.Fprintln(os.Stderr, "river: -rounds, -tasks, -submitters, -workers, -capacity and -conns must be at least 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "river:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) (err error) {
	url := o.pg
	if url == "" {
		fmt.Fprintln(os.Stderr, "starting PostgreSQL...")
		srv, err := startPostgres(ctx)
		if err != nil {
			return fmt.Errorf("start PostgreSQL: %w", err)
		}
		defer func() { err = errors.Join(err, srv.stop()) }()
		url = srv.url()
	}
	db, err := openRiver(ctx, url, int32(o.conns))
	if err != nil {
		return fmt.Errorf("PostgreSQL: %w", err)
	}
	defer func() { err = errors.Join(err, db.close()) }()
	server, err := db.describe(ctx)
	if err != nil {
		return err
	}
	var subjects []subject
	for _, s := range []subject{
		{"paas", paasE2E, func(ctx context.Context, o options) (float64, error) {
			dir, err := os.MkdirTemp("", "paas-bench-river-bolt-")
			if err != nil {
				return 0, err
			}
			defer os.RemoveAll(dir)
			return paasEndToEnd(ctx, dir, o)
		}},
		{"burndown", riverBurn, func(ctx context.Context, o options) (float64, error) { return riverBurnDown(ctx, db, o) }},
		{"e2e", riverE2E, func(ctx context.Context, o options) (float64, error) { return riverEndToEnd(ctx, db, o) }},
	} {
		if o.only == "" || slices.Contains(strings.Split(o.only, ","), s.flag) {
			subjects = append(subjects, s)
		}
	}
	if len(subjects) == 0 {
		return fmt.Errorf("-only %q names no subject: give paas, burndown or e2e", o.only)
	}
	loadBefore := loadAverage()
	got := map[string]sample{}
	for round := range o.rounds {
		v := map[string]float64{}
		for i := range subjects {
			s := subjects[i]
			if round%2 == 1 {
				s = subjects[len(subjects)-1-i]
			}
			fmt.Fprintf(os.Stderr, "round %d: %s\n", round+1, s.name)
			x, err := s.run(ctx, o)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			v[s.name] = x
		}
		for _, r := range []struct{ ratio, of string }{{ratioBurnDown, riverBurn}, {ratioE2E, riverE2E}} {
			if v[paasE2E] > 0 && v[r.of] > 0 {
				v[r.ratio] = v[paasE2E] / v[r.of]
			}
		}
		for k, x := range v {
			got[k] = append(got[k], x)
		}
	}
	fmt.Printf("paas on bolt against River on PostgreSQL: %d rounds of %d tasks; %d submitters; paas capacity %d; River %d workers, %d connections\n",
		o.rounds, o.tasks, o.submitters, o.capacity, o.workers, o.conns)
	fmt.Printf("%s\n", server)
	fmt.Printf("load average (1 min): %s before, %s after; the figures assume a machine otherwise idle\n\n", loadBefore, loadAverage())
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

// loadAverage is the machine's load over the last minute, from /proc/loadavg, or "?".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}
