package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"golang.org/x/sync/errgroup"
)

// schema holds River's tables, so that a server given with -pg keeps its own River tables,
// if it has any, untouched.
const schema = "paas_bench_river"

// insertBatch is how many jobs one InsertMany of the burn-down's backlog carries.
const insertBatch = 5_000

// The settings River's own benchmark (riverbench) uses to maximise throughput.
const (
	fetchCooldown     = 2 * time.Millisecond
	fetchPollInterval = 20 * time.Millisecond
)

// ErrJobFailed is returned when a River job of the bench fails or is cancelled; the worker
// does nothing, so neither should ever happen.
var ErrJobFailed = errors.New("a River job failed or was cancelled")

// noopArgs is the job of both River figures: a few bytes of JSON, like paas's program.
type noopArgs struct {
	N int64 `json:"n"`
}

func (noopArgs) Kind() string { return "noop" }

// noopWorker does nothing.
type noopWorker struct {
	river.WorkerDefaults[noopArgs]
}

func (noopWorker) Work(context.Context, *river.Job[noopArgs]) error { return nil }

// riverDB is the pool of connections to the PostgreSQL server, with River's schema
// migrated in it.
type riverDB struct {
	pool   *pgxpool.Pool
	driver *riverpgxv5.Driver
}

// openRiver connects to url with at most conns connections and migrates River's schema.
func openRiver(ctx context.Context, url string, conns int32) (*riverDB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = conns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	db := &riverDB{pool: pool, driver: riverpgxv5.New(pool)}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

func (db *riverDB) migrate(ctx context.Context) error {
	if _, err := db.pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema); err != nil {
		return err
	}
	m, err := rivermigrate.New(db.driver, &rivermigrate.Config{Schema: schema, Logger: quietLogger()})
	if err != nil {
		return err
	}
	_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	return err
}

// close drops the bench's schema and closes the pool.
func (db *riverDB) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := db.pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
	db.pool.Close()
	return err
}

// reset empties the jobs table, as riverbench does before each run, so that every round
// starts from the same table.
func (db *riverDB) reset(ctx context.Context) error {
	for _, q := range []string{"TRUNCATE " + schema + ".river_job", "VACUUM FULL " + schema + ".river_job"} {
		if _, err := db.pool.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// completedJobs counts the jobs in state completed.
func (db *riverDB) completedJobs(ctx context.Context) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx, "SELECT count(*) FROM "+schema+".river_job WHERE state = 'completed'").Scan(&n)
	return n, err
}

// newClient is a River client working one queue with workers workers.
func (db *riverDB) newClient(workers int) (*river.Client[pgx.Tx], error) {
	w := river.NewWorkers()
	if err := river.AddWorkerSafely(w, noopWorker{}); err != nil {
		return nil, err
	}
	return river.NewClient(db.driver, &river.Config{
		FetchCooldown:     fetchCooldown,
		FetchPollInterval: fetchPollInterval,
		Logger:            quietLogger(),
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: workers}},
		Schema:            schema,
		Workers:           w,
	})
}

// riverBurnDown inserts n jobs (not timed), then starts a client and returns the jobs per
// second from Start until the last job's completion is stored.
func riverBurnDown(ctx context.Context, db *riverDB, o options) (float64, error) {
	if err := db.reset(ctx); err != nil {
		return 0, err
	}
	c, err := db.newClient(o.workers)
	if err != nil {
		return 0, err
	}
	batch := make([]river.InsertManyParams, 0, insertBatch)
	for i := range o.tasks {
		batch = append(batch, river.InsertManyParams{Args: noopArgs{N: int64(i)}})
		if len(batch) == cap(batch) || i == o.tasks-1 {
			if _, err := c.InsertManyFast(ctx, batch); err != nil {
				return 0, fmt.Errorf("insert the backlog: %w", err)
			}
			batch = batch[:0]
		}
	}
	return runRiver(ctx, db, c, o.tasks, func(context.Context) error { return nil })
}

// riverEndToEnd starts a client on an empty table, and returns the jobs per second from
// Start until the last of n jobs, inserted one per Insert by o.submitters goroutines while
// the client works, is stored as completed.
func riverEndToEnd(ctx context.Context, db *riverDB, o options) (float64, error) {
	if err := db.reset(ctx); err != nil {
		return 0, err
	}
	c, err := db.newClient(o.workers)
	if err != nil {
		return 0, err
	}
	return runRiver(ctx, db, c, o.tasks, func(ctx context.Context) error {
		g, ctx := errgroup.WithContext(ctx)
		var next atomic.Int64
		for range o.submitters {
			g.Go(func() error {
				for {
					i := next.Add(1) - 1
					if i >= int64(o.tasks) {
						return nil
					}
					if _, err := c.Insert(ctx, noopArgs{N: i}, nil); err != nil {
						return fmt.Errorf("insert: %w", err)
					}
				}
			})
		}
		return g.Wait()
	})
}

// runRiver starts c, runs submit beside it, and returns n over the time from Start until
// the n-th completion is reported; it then checks that the table holds n completed jobs,
// and stops c.
func runRiver(ctx context.Context, db *riverDB, c *river.Client[pgx.Tx], n int, submit func(context.Context) error) (rate float64, err error) {
	// River reports a job's completion on this channel once the completer has stored it,
	// and drops events when the channel is full: one place per job keeps them all.
	events, unsubscribe := c.SubscribeConfig(&river.SubscribeConfig{
		ChanSize: n,
		Kinds:    []river.EventKind{river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled},
	})
	defer unsubscribe()
	t0 := time.Now()
	if err := c.Start(ctx); err != nil {
		return 0, err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err = errors.Join(err, c.Stop(stopCtx))
	}()
	submitCtx, cancelSubmit := context.WithCancel(ctx)
	submitted := make(chan error, 1) // the submitting goroutine's one result: never blocks
	go func() { submitted <- submit(submitCtx) }()
	defer func() {
		cancelSubmit()
		if submitted == nil {
			return // already received
		}
		if serr := <-submitted; serr != nil && !errors.Is(serr, context.Canceled) {
			err = errors.Join(err, serr)
		}
	}()
	var elapsed time.Duration
	for done := 0; done < n; {
		select {
		case e, ok := <-events:
			if !ok {
				return 0, errors.New("river: the event channel closed before the jobs were done")
			}
			if e.Kind != river.EventKindJobCompleted {
				return 0, fmt.Errorf("%w: job %d: %s", ErrJobFailed, e.Job.ID, e.Kind)
			}
			done++
			elapsed = time.Since(t0)
		case serr := <-submitted:
			submitted = nil // received: only completions are left to wait for
			if serr != nil {
				return 0, serr
			}
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	got, err := db.completedJobs(ctx)
	if err != nil {
		return 0, err
	}
	if got != n {
		return 0, fmt.Errorf("river: %d jobs reported completed, the table holds %d", n, got)
	}
	return float64(n) / elapsed.Seconds(), nil
}

// quietLogger passes on River's warnings and errors only.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// describe says which server and River the figures are of, and with which durability.
func (db *riverDB) describe(ctx context.Context) (string, error) {
	var version, fsync, syncCommit string
	for q, dst := range map[string]*string{
		"SHOW server_version": &version, "SHOW fsync": &fsync, "SHOW synchronous_commit": &syncCommit,
	} {
		if err := db.pool.QueryRow(ctx, q).Scan(dst); err != nil {
			return "", fmt.Errorf("%s: %w", q, err)
		}
	}
	riverVersion := "(unknown)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "github.com/riverqueue/river" {
				riverVersion = m.Version
			}
		}
	}
	return fmt.Sprintf("River %s on PostgreSQL %s, fsync %s, synchronous_commit %s", riverVersion, version, fsync, syncCommit), nil
}
