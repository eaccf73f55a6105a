// Command provernode is a prover node for a small rollup, the main example of paas: it proves
// the rollup's blocks with gnark, checkpoints each epoch, keeps every task and proof on disk,
// and resumes where it stopped.
//
//	go run ./examples/provernode
//
// Each block is a StateTransition, proven with Groth16: a chain of MiMC hashes over the state
// (the chain is its circuit, -rounds long). Each epoch of -epoch blocks has a Checkpoint,
// proven with PLONK over the public outputs of its transitions' proofs, which it depends on,
// and an Execution, run natively, which says where the epoch must end. The node submits
// -blocks blocks, shows its progress, then verifies every proof and prints what each backend's
// provers did. The first run sets the circuits up (seconds) and caches their keys in the data
// directory; later runs read them back. Ctrl-C stops the node gracefully; running it again
// resumes, and proves nothing that is proven already.
//
// With -isolate, Groth16 proofs run in prover processes of their own (this program again, with
// the hidden subcommand gnark-prove), which cancellation kills at once. With -bonsai-url and
// -bonsai-key, each epoch's Execution is also proven on Risc0 Bonsai (or a self-hosted Bento)
// with the guest -bonsai-elf, whose image id is -bonsai-image.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/zkpaas/paas/handler/gnarkhost"
)

// options are the node's flags.
type options struct {
	dataDir  string
	blocks   int
	epoch    int
	rounds   int
	workers  int64
	failRate float64
	progress string
	isolate  bool
	srs      string
	logs     bool

	bonsaiURL, bonsaiKey, bonsaiImage, bonsaiELF, bonsaiVersion string
	bonsaiPoll                                                  time.Duration
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == gnarkhost.ProverCommand {
		os.Exit(gnarkhost.ProverMain(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	opts := options{}
	flag.StringVar(&opts.dataDir, "data", "./data/provernode", "directory of the node's tasks, proofs and key cache; created if missing")
	flag.IntVar(&opts.blocks, "blocks", 96, "blocks to prove, one StateTransition each")
	flag.IntVar(&opts.epoch, "epoch", 8, "blocks per epoch, one Checkpoint each")
	flag.IntVar(&opts.rounds, "rounds", 64, "MiMC rounds per block: the size of the transition circuit (about 330 constraints a round)")
	flag.Int64Var(&opts.workers, "workers", 1, "workers per gnark backend (gnark's provers use every core)")
	flag.Float64Var(&opts.failRate, "fail-rate", 0.05, "rate of injected transient prover failures, to show retries")
	flag.StringVar(&opts.progress, "progress", progressAuto, "progress display: auto, bar, lines or none")
	flag.BoolVar(&opts.isolate, "isolate", false, "prove Groth16 in a prover process per proof, killed on cancel")
	flag.StringVar(&opts.srs, "srs", "", "canonical KZG SRS file of a ceremony for PLONK; empty: an insecure test SRS")
	flag.BoolVar(&opts.logs, "logs", false, "print the service's logs on stderr")
	flag.StringVar(&opts.bonsaiURL, "bonsai-url", os.Getenv("BONSAI_API_URL"), "Bonsai API URL; with -bonsai-key, executions are also proven there")
	flag.StringVar(&opts.bonsaiKey, "bonsai-key", os.Getenv("BONSAI_API_KEY"), "Bonsai API key")
	flag.StringVar(&opts.bonsaiImage, "bonsai-image", "", "image id (hex) of the Risc0 guest that runs an epoch")
	flag.StringVar(&opts.bonsaiELF, "bonsai-elf", "", "ELF file of that guest, uploaded if Bonsai does not have it")
	flag.StringVar(&opts.bonsaiVersion, "bonsai-version", "3.0.0", "the risc0-zkvm version of the guest, sent as x-risc0-version")
	flag.DurationVar(&opts.bonsaiPoll, "bonsai-poll", defaultBonsaiPoll, "how often a Bonsai session's status is asked for")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, opts); err != nil {
		fmt.Fprintln(os.Stderr, "provernode:", err)
		os.Exit(1)
	}
}

// check reports the first flag out of range.
func (o options) check() error {
	switch {
	case o.blocks < 1:
		return errors.New("-blocks must be at least 1")
	case o.epoch < 1:
		return errors.New("-epoch must be at least 1")
	case o.rounds < 1:
		return errors.New("-rounds must be at least 1")
	case o.workers < 1:
		return errors.New("-workers must be at least 1")
	case o.failRate < 0 || o.failRate >= 1:
		return errors.New("-fail-rate must be in [0, 1)")
	}
	switch o.progress {
	case progressAuto, progressBar, progressLines, progressNone:
	default:
		return fmt.Errorf("-progress %q: want auto, bar, lines or none", o.progress)
	}
	return nil
}

// run runs the node until its batch is proven and verified, or ctx ends.
func run(ctx context.Context, out io.Writer, opts options) (err error) {
	if err := opts.check(); err != nil {
		return err
	}
	n, err := openNode(out, opts)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, n.close()) }()
	if err := n.start(ctx); err != nil {
		return err
	}
	b, err := n.submit(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "batch: %d blocks in %d epochs, %d tasks; %d already done\n",
		opts.blocks, len(b.checkpoints), b.len(), b.doneBefore)

	started := time.Now()
	if err := n.wait(ctx, b); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(out, "stopped after %s; run again to resume\n", time.Since(started).Round(time.Millisecond))
			return nil
		}
		return err
	}
	fmt.Fprintf(out, "proven in %s\n\n", time.Since(started).Round(time.Millisecond))
	return n.report(ctx, out, b)
}
