// Command quickstart is a small prover node built on paas. It shows, in one file:
//
//   - a program type (FibProgram) and a handler.RemoteProofHandler that fetches its input,
//     proves it and stores the proof;
//   - two backends with their own worker pools: the native backend, which runs the program
//     without proving it, and a mock SP1 backend;
//   - a durable store (store/bolt): one file, paas.db in the -data directory, that keeps both
//     the service's tasks and the handler's proofs, so they outlive the process;
//   - submitting tasks, deduplication of a repeated submit, a transient failure retried with
//     backoff, waiting for results, and reading the stored proofs and the service's Summary;
//   - starting and stopping the service, then closing the store.
//
// Run it with:
//
//	go run ./examples/quickstart                 # with the service's logs on stderr
//	go run ./examples/quickstart -quiet          # results only
//	go run ./examples/quickstart -data /tmp/q    # keep the data in /tmp/q instead of ./data
//
// Run it twice: the second run finds the first run's tasks completed in paas.db. Submitting the
// same programs returns the same task ids, nothing is proven again, and the PROVEN column says
// "earlier run" instead of "now". Delete the data directory to start over. Only one process
// may have the file open at a time: a second quickstart on the same directory fails within a
// second with bolt.ErrLocked instead of waiting for the first.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/service"
	"github.com/zkpaas/paas/store/bolt"
)

// FibProgram asks for the N-th Fibonacci number. Its JSON encoding, routing key and backend
// identify a task, so submitting an equal FibProgram to the same backend again is a no-op.
type FibProgram struct{ N uint64 }

// RoutingKey implements paas.ProgramType: FibPrograms are proven by the "fib" handler.
func (FibProgram) RoutingKey() paas.RoutingKey { return "fib" }

// fib returns the n-th Fibonacci number. fib(93) is the largest that fits in a uint64.
func fib(n uint64) (uint64, error) {
	if n > 93 {
		// Retrying cannot make it fit: the task fails at once.
		return 0, paas.Permanent(fmt.Errorf("fib(%d) overflows uint64", n))
	}
	a, b := uint64(0), uint64(1)
	for range n {
		a, b = b, a+b
	}
	return a, nil
}

// runFib is the program itself: it turns the input N into the public output fib(N).
func runFib(_ context.Context, n uint64) ([]byte, error) {
	v, err := fib(n)
	if err != nil {
		return nil, err
	}
	return strconv.AppendUint(nil, v, 10), nil
}

// mockSP1Host stands in for an SP1 prover so that the example runs with only Go installed.
// It is NOT a proof: it runs the program natively and "proves" it by hashing the input and the
// output into the Receipt. A real Host would send the input to an SP1 prover and return its
// receipt.
var mockSP1Host = handler.HostFunc[uint64](func(ctx context.Context, n uint64) (paas.Proof, error) {
	out, err := runFib(ctx, n)
	if err != nil {
		return paas.Proof{}, err
	}
	h := sha256.New()
	h.Write(binary.BigEndian.AppendUint64(nil, n))
	h.Write(out)
	return paas.Proof{Backend: paas.BackendSP1, Receipt: h.Sum(nil), PublicValues: out}, nil
})

// flakyFetcher returns a fetcher whose input is just N, except that it fails once for N == 13,
// as a remote node might, to show a retry. A plain error is transient: the task is retried.
func flakyFetcher() handler.InputFetcher[FibProgram, uint64] {
	var failed atomic.Bool
	return handler.InputFetcherFunc[FibProgram, uint64](func(_ context.Context, p FibProgram) (uint64, error) {
		if p.N == 13 && failed.CompareAndSwap(false, true) {
			return 0, errors.New("input node unavailable")
		}
		return p.N, nil
	})
}

// recordingStorer stores proofs in a bolt.Store and remembers the tasks whose proofs it stored,
// that is, the tasks proven by this process. A completed task it does not remember was proven
// by an earlier run, whose proof the store kept.
type recordingStorer struct {
	store *bolt.Store

	mu     sync.Mutex
	proven map[paas.TaskID]bool
}

// StoreProof implements paas.ProofStorer: it stores the proof, then records the task.
func (s *recordingStorer) StoreProof(ctx context.Context, id paas.TaskID, proof paas.Proof) error {
	if err := s.store.StoreProof(ctx, id, proof); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proven == nil {
		s.proven = make(map[paas.TaskID]bool)
	}
	s.proven[id] = true
	return nil
}

// Proof returns the proof stored for task id, by this run or an earlier one.
func (s *recordingStorer) Proof(ctx context.Context, id paas.TaskID) (paas.Proof, error) {
	return s.store.Proof(ctx, id)
}

// provenNow reports whether this process stored the proof of task id.
func (s *recordingStorer) provenNow(id paas.TaskID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proven[id]
}

// submission is one program to prove on one backend.
type submission struct {
	program FibProgram
	backend paas.Backend
}

func (s submission) String() string { return fmt.Sprintf("fib(%d) on %s", s.program.N, s.backend) }

// options are the command line flags of the quickstart.
type options struct {
	quiet   bool   // print the results only, without the service's logs
	dataDir string // directory of the data file paas.db; created if missing
}

// dataFile is the name of the file, in options.dataDir, that keeps the tasks and the proofs.
const dataFile = "paas.db"

func main() {
	var opts options
	flag.BoolVar(&opts.quiet, "quiet", false, "print the results only, without the service's logs")
	flag.StringVar(&opts.dataDir, "data", "./data",
		"directory of the file "+dataFile+", which keeps the tasks and proofs between runs; created if missing")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, opts); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// run opens the store in opts.dataDir, starts a prover service on it, proves a few programs on
// two backends (or finds them proven by an earlier run), prints the results to out, stops the
// service and closes the store. It returns an error if anything unexpected happens, and one
// wrapping bolt.ErrLocked if another process has the data file open.
func run(ctx context.Context, out io.Writer, opts options) (err error) {
	logger := zap.NewNop()
	if !opts.quiet {
		cfg := zap.NewDevelopmentConfig() // human-readable, on stderr
		cfg.Level = zap.NewAtomicLevelAt(zap.InfoLevel)
		cfg.DisableStacktrace = true // a retried attempt is logged as a warning, not a crash
		if logger, err = cfg.Build(); err != nil {
			return fmt.Errorf("build logger: %w", err)
		}
		defer func() { _ = logger.Sync() }()
	}

	// 1. The store: one file for the service's tasks and the handler's proofs. Open locks it;
	// a second process on the same file fails after bolt.DefaultLockTimeout (a second).
	if err := os.MkdirAll(opts.dataDir, 0o700); err != nil {
		return fmt.Errorf("create the data directory: %w", err)
	}
	path := filepath.Join(opts.dataDir, dataFile)
	store, err := bolt.Open(path, nil)
	if errors.Is(err, bolt.ErrLocked) {
		return fmt.Errorf("%w; is another quickstart running on %s? Stop it, or pass another -data", err, opts.dataDir)
	}
	if err != nil {
		return err
	}
	// Deferred before the service starts, so it runs after Stop, once nothing writes.
	defer func() {
		if closeErr := store.Close(); closeErr != nil && err == nil {
			err = closeErr
		}
	}()
	proofs := &recordingStorer{store: store}

	// 2. The handler: fetch the input, prove it on the task's backend, store the proof.
	fibHandler := &handler.RemoteProofHandler[FibProgram, uint64]{
		Fetcher: flakyFetcher(),
		Hosts: handler.HostMap[uint64]{
			paas.BackendNative: handler.NativeHost[uint64]{Run: runFib},
			paas.BackendSP1:    mockSP1Host,
		},
		Storer: proofs,
	}
	if err := fibHandler.Validate(); err != nil {
		return err
	}

	// 3. The service: two native workers and one SP1 worker, quick retries for the demo.
	svc, err := service.New(paas.Config{
		Workers: map[paas.Backend]int64{paas.BackendNative: 2, paas.BackendSP1: 1},
		Retry:   &paas.RetryConfig{MaxRetries: 3, BaseDelay: 100 * time.Millisecond},
		Logger:  logger,
	}, store, map[paas.RoutingKey]handler.ProofHandler{"fib": fibHandler})
	if err != nil {
		return err
	}
	if err := svc.Start(ctx); err != nil {
		return err
	}
	defer func() {
		// Let running handlers finish for up to 5s, then cancel them.
		stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if stopErr := svc.Stop(stopCtx); stopErr != nil && err == nil {
			err = fmt.Errorf("stop: %w", stopErr)
		}
	}()
	h := svc.Handle()

	// 4. Submit. Submit returns once the task is stored; the workers prove in the background.
	// A program already in the store, from an earlier run, keeps its task: Submit returns its id.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	submissions := []submission{
		{FibProgram{N: 10}, paas.BackendNative},
		{FibProgram{N: 13}, paas.BackendNative}, // its input fetch fails once: retried
		{FibProgram{N: 50}, paas.BackendNative},
		{FibProgram{N: 90}, paas.BackendNative},
		{FibProgram{N: 10}, paas.BackendSP1}, // same program, another backend: another task
		{FibProgram{N: 20}, paas.BackendSP1},
	}
	ids := make([]paas.TaskID, len(submissions))
	for i, s := range submissions {
		if ids[i], err = h.Submit(ctx, s.program, s.backend); err != nil {
			return fmt.Errorf("submit %s: %w", s, err)
		}
	}
	// Submitting a program again returns the task that already exists, and proves nothing.
	dup, err := h.Submit(ctx, submissions[0].program, submissions[0].backend)
	if err != nil {
		return fmt.Errorf("submit %s again: %w", submissions[0], err)
	}
	if dup != ids[0] {
		return fmt.Errorf("submit %s again: got task %s, want %s", submissions[0], dup, ids[0])
	}
	fmt.Fprintf(out, "submitted %d programs; %s again is the same task %s\n\n", len(submissions), submissions[0], short(dup))

	// 5. Wait for every task and print what it proved, and whether this run proved it.
	type row struct {
		res    paas.TaskResult
		proof  paas.Proof
		proven string
	}
	rows := make([]row, len(submissions))
	earlier := 0
	for i, s := range submissions {
		res, err := h.Wait(ctx, ids[i])
		if err != nil {
			return fmt.Errorf("wait for %s: %w", s, err)
		}
		if err := res.Err(); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		proof, err := proofs.Proof(ctx, res.ID)
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		rows[i] = row{res: res, proof: proof, proven: "now"}
		if !proofs.provenNow(res.ID) {
			rows[i].proven = "earlier run"
			earlier++
		}
	}
	if earlier == 0 {
		fmt.Fprintf(out, "data: %s (no program was proven by an earlier run; run again to find them all done)\n\n", path)
	} else {
		fmt.Fprintf(out, "data: %s (%d of %d programs were proven by an earlier run; delete the folder to start over)\n\n",
			path, earlier, len(submissions))
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tPROGRAM\tSTATE\tATTEMPTS\tPUBLIC VALUE\tRECEIPT\tPROVEN")
	for i, s := range submissions {
		r := rows[i]
		receipt := "-" // the native backend proves nothing
		if len(r.proof.Receipt) > 0 {
			receipt = "sha256:" + hex.EncodeToString(r.proof.Receipt[:6]) + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n",
			short(r.res.ID), s, r.res.State, r.res.Attempts, r.proof.PublicValues, receipt, r.proven)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	// 6. The Summary counts the unfinished tasks of the store, and the tasks that reached a
	// final state since the service started: on a second run, the completed ones are not
	// counted again.
	sum, err := h.Summary(ctx)
	if err != nil {
		return err
	}
	fmt.Fprint(out, "\nsummary since the service started:")
	for _, state := range paas.States {
		fmt.Fprintf(out, " %s=%d", state, sum.Count(state))
	}
	fmt.Fprintln(out)
	return nil
}

// short returns the last 8 characters of a task id, enough to tell the tasks apart. Not the
// first ones: a task id is a UUIDv7, which begins with its creation time in milliseconds, the
// same for all the tasks submitted in one millisecond. It ends with random bits.
func short(id paas.TaskID) string {
	s := id.String()
	return s[len(s)-8:]
}
