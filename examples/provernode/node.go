package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/logger"
	"go.uber.org/zap"
	"golang.org/x/sync/semaphore"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/handler/gnarkhost"
	"github.com/zkpaas/paas/service"
	"github.com/zkpaas/paas/store/bolt"
)

// node is the prover node: its store, keys, hosts and service.
type node struct {
	opts    options
	out     io.Writer
	logger  *zap.Logger
	store   *bolt.Store
	chain   *chain
	meter   *meter
	workers map[paas.Backend]int64 // the service's, per backend
	provers map[paas.Backend]int64 // proofs at once, per backend
	svc     *service.ProverService

	transitionKeys, checkpointKeys *gnarkhost.Keys
	bonsai                         bool // executions are proven on Bonsai too
}

// openNode opens the store, sets the circuits up and builds the service.
func openNode(out io.Writer, opts options) (n *node, err error) {
	n = &node{opts: opts, out: out, logger: zap.NewNop(), meter: newMeter()}
	if opts.logs {
		cfg := zap.NewDevelopmentConfig()
		cfg.DisableStacktrace = true
		if n.logger, err = cfg.Build(); err != nil {
			return nil, err
		}
	}
	logger.Disable() // gnark logs every proof on stdout
	if err := os.MkdirAll(opts.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create the data directory: %w", err)
	}
	if n.store, err = bolt.Open(filepath.Join(opts.dataDir, "paas.db"), nil); err != nil {
		if errors.Is(err, bolt.ErrLocked) {
			return nil, fmt.Errorf("%w: is another provernode running on %s?", err, opts.dataDir)
		}
		return nil, err
	}
	defer func() {
		if err != nil {
			n.store.Close()
		}
	}()
	if err := n.setup(); err != nil {
		return nil, err
	}
	n.chain = newChain(opts.rounds, uint64(opts.blocks))
	handlers, err := n.handlers()
	if err != nil {
		return nil, err
	}
	n.svc, err = service.New(paas.Config{
		Workers: n.workers,
		Retry:   &paas.RetryConfig{MaxRetries: 5, BaseDelay: 200 * time.Millisecond, MaxDelay: 5 * time.Second},
		Logger:  n.logger,
	}, n.store, handlers)
	if err != nil {
		return nil, err
	}
	return n, nil
}

// setup sets up the two circuits, or reads their cached keys.
func (n *node) setup() error {
	cfg := gnarkhost.Config{CacheDir: filepath.Join(n.opts.dataDir, "keys")}
	if n.opts.srs != "" {
		cfg.SRS = gnarkhost.SRSFile{Path: n.opts.srs}
	} else {
		cfg.SRS = gnarkhost.InsecureTestSRS{CacheDir: filepath.Join(n.opts.dataDir, "test-srs")}
		fmt.Fprintln(n.out, "PLONK: an insecure test SRS, good for a demo only (-srs FILE for a ceremony's)")
	}
	var err error
	if n.transitionKeys, err = n.setupOne(cfg, gnarkhost.Circuit{
		ID: fmt.Sprintf("transition-r%d", n.opts.rounds), Scheme: gnarkhost.Groth16,
		Definition: &Transition{Rounds: n.opts.rounds},
	}); err != nil {
		return err
	}
	n.checkpointKeys, err = n.setupOne(cfg, gnarkhost.Circuit{
		ID: fmt.Sprintf("checkpoint-e%d", n.opts.epoch), Scheme: gnarkhost.PLONK,
		Definition: &CheckpointCircuit{States: make([]frontend.Variable, n.opts.epoch)},
	})
	return err
}

func (n *node) setupOne(cfg gnarkhost.Config, c gnarkhost.Circuit) (*gnarkhost.Keys, error) {
	start := time.Now()
	k, err := gnarkhost.Setup(cfg, c)
	if err != nil {
		return nil, err
	}
	how := "set up"
	if k.FromCache {
		how = "read from the cache"
	}
	fmt.Fprintf(n.out, "keys of %s (%s, %d constraints) %s in %s\n", c.ID, c.Scheme, k.Constraints(), how, time.Since(start).Round(time.Millisecond))
	if k.CacheError != nil {
		fmt.Fprintf(n.out, "  the cache was not used: %v\n", k.CacheError)
	}
	return k, nil
}

// handlers builds a handler per program, and the backends' workers.
func (n *node) handlers() (map[paas.RoutingKey]handler.ProofHandler, error) {
	rate := n.opts.failRate
	var transitions handler.Host[transitionInput] = &gnarkhost.Host[transitionInput]{
		Keys: n.transitionKeys, Assign: assignTransition(n.opts.rounds), Parallel: int(n.opts.workers),
	}
	if n.opts.isolate {
		transitions = &gnarkhost.Subprocess[transitionInput]{Keys: n.transitionKeys, Assign: assignTransition(n.opts.rounds)}
	}
	checkpoints := &gnarkhost.Host[checkpointInput]{Keys: n.checkpointKeys, Assign: assignCheckpoint, Parallel: int(n.opts.workers)}
	executions := handler.HostMap[Execution]{}
	// One task more than provers on each backend: see metered.
	n.provers = map[paas.Backend]int64{backendGroth16: n.opts.workers, backendPLONK: n.opts.workers, paas.BackendNative: 1}
	n.workers = map[paas.Backend]int64{backendGroth16: n.opts.workers + 1, backendPLONK: n.opts.workers + 1, paas.BackendNative: 2}
	slots := func() *semaphore.Weighted { return semaphore.NewWeighted(n.opts.workers) }
	executions[paas.BackendNative] = metered[Execution]{backend: paas.BackendNative, meter: n.meter,
		host: handler.NativeHost[Execution]{Run: runExecution(n.chain)}, slots: semaphore.NewWeighted(1)}
	if bonsai, err := n.bonsaiHost(); err != nil {
		return nil, err
	} else if bonsai != nil {
		executions[paas.BackendRisc0] = metered[Execution]{backend: paas.BackendRisc0, meter: n.meter, host: bonsai, rate: rate}
		n.workers[paas.BackendRisc0], n.provers[paas.BackendRisc0] = 4, 4 // remote: the node only waits
		n.bonsai = true
	}
	return map[paas.RoutingKey]handler.ProofHandler{
		StateTransition{}.RoutingKey(): &handler.RemoteProofHandler[StateTransition, transitionInput]{
			Fetcher: transitionFetcher(n.chain),
			Hosts: handler.HostMap[transitionInput]{
				backendGroth16: metered[transitionInput]{backend: backendGroth16, host: transitions, meter: n.meter, rate: rate, slots: slots()},
			},
			Storer: n.store,
		},
		Checkpoint{}.RoutingKey(): &handler.RemoteProofHandler[Checkpoint, checkpointInput]{
			Fetcher: checkpointFetcher(n.store, n.transitionKeys),
			Hosts: handler.HostMap[checkpointInput]{
				backendPLONK: metered[checkpointInput]{backend: backendPLONK, host: checkpoints, meter: n.meter, rate: rate, slots: slots()},
			},
			Storer: n.store,
		},
		Execution{}.RoutingKey(): &handler.RemoteProofHandler[Execution, Execution]{
			Fetcher: executionFetcher(), Hosts: executions, Storer: n.store,
		},
	}, nil
}

func (n *node) start(ctx context.Context) error { return n.svc.Start(ctx) }

// close stops the service gracefully, then closes the store.
func (n *node) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := n.svc.Stop(ctx)
	<-n.svc.Stopped() // an in-process proof ends before the store closes under it
	if _, ok := errors.AsType[*paas.AbandonedError](err); ok {
		err = nil // its task runs again on the next start
	}
	_ = n.logger.Sync()
	return errors.Join(err, n.store.Close())
}

// batch is the node's tasks, by kind, in block and epoch order.
type batch struct {
	transitions []paas.TaskID
	checkpoints []paas.TaskID
	executions  []paas.TaskID
	bonsai      []paas.TaskID
	epochs      []Checkpoint
	submitted   time.Time
	doneBefore  int
}

func (b *batch) len() int {
	return len(b.transitions) + len(b.checkpoints) + len(b.executions) + len(b.bonsai)
}

func (b *batch) all() []paas.TaskID {
	return append(append(append(append([]paas.TaskID(nil), b.transitions...), b.checkpoints...), b.executions...), b.bonsai...)
}

// submit submits the batch. Submitting a program again gives its task: after a restart the
// batch is the same tasks, and those already done are not proven again.
func (n *node) submit(ctx context.Context) (*batch, error) {
	h := n.svc.Handle()
	b := &batch{submitted: time.Now()}
	for from := 0; from < n.opts.blocks; from += n.opts.epoch {
		to := min(from+n.opts.epoch, n.opts.blocks)
		var epoch []paas.TaskID
		for block := from; block < to; block++ {
			id, err := h.Submit(ctx, StateTransition{From: uint64(block), To: uint64(block + 1)}, backendGroth16)
			if err != nil {
				return nil, err
			}
			epoch = append(epoch, id)
		}
		b.transitions = append(b.transitions, epoch...)
		cp := Checkpoint{Epoch: uint64(len(b.epochs)), From: uint64(from), To: uint64(to)}
		if to-from != n.opts.epoch {
			break // a last, short epoch has no checkpoint: its circuit is of another size
		}
		id, err := h.Submit(ctx, cp, backendPLONK, paas.After(epoch...))
		if err != nil {
			return nil, err
		}
		b.checkpoints, b.epochs = append(b.checkpoints, id), append(b.epochs, cp)
		if id, err = h.Submit(ctx, Execution{From: cp.From, To: cp.To}, paas.BackendNative); err != nil {
			return nil, err
		}
		b.executions = append(b.executions, id)
		if n.bonsai {
			if id, err = h.Submit(ctx, Execution{From: cp.From, To: cp.To}, paas.BackendRisc0); err != nil {
				return nil, err
			}
			b.bonsai = append(b.bonsai, id)
		}
	}
	// Done before this run: Completed, though no host of this run proved it. (A fast task
	// may have completed already in this run; it has run a host.)
	for _, id := range b.all() {
		st, err := h.Status(ctx, id)
		if err != nil {
			return nil, err
		}
		if st.State == paas.Completed && !n.meter.ran(id) {
			b.doneBefore++
		}
	}
	return b, nil
}

// wait waits for every task of the batch, showing progress.
func (n *node) wait(ctx context.Context, b *batch) error {
	p := &progress{out: n.out, mode: modeFor(n.opts.progress, n.out), h: n.svc.Handle(),
		total: b.len(), before: b.doneBefore, start: time.Now()}
	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { p.run(pctx) })
	defer wg.Wait()
	defer stop()
	for _, id := range b.all() {
		if _, err := n.svc.Handle().Wait(ctx, id); err != nil {
			return err
		}
	}
	return nil
}
