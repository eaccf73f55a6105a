package gnarkhost

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/frontend"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/handler/exechost"
)

// ProverCommand is the subcommand that Subprocess runs by default: a program that proves with
// Subprocess dispatches it to ProverMain before anything else, as in
//
//	if len(os.Args) > 1 && os.Args[1] == gnarkhost.ProverCommand {
//		os.Exit(gnarkhost.ProverMain(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
//	}
const ProverCommand = "gnark-prove"

// Exit codes of ProverMain, which Subprocess reads.
const (
	// ExitUsage: the arguments were wrong, as when the program does not dispatch
	// ProverCommand. Permanent: the same command fails every task.
	ExitUsage = 64
	// ExitWitness: the input is not a witness of the circuit. Permanent.
	ExitWitness = 65
	// ExitCache: the cached keys could not be read. Subprocess writes them again from its
	// own, and the attempt is tried again.
	ExitCache = 66
	// ExitFailed: anything else, such as a fresh proof that failed verification. Transient.
	ExitFailed = 70
)

// maxSubprocessOutput bounds what a prover process may write: a proof and its public witness,
// a few kilobytes for these schemes.
const maxSubprocessOutput = 16 << 20

// Subprocess proves a circuit in a prover process of its own for every proof: a handler.Host
// whose proofs can be stopped. A cancelled task or an attempt past its timeout has its process
// sent SIGTERM, which ends a Go program at once, and SIGKILL after Grace; a proof that runs out
// of memory, or panics, ends its process and fails its attempt, not the node.
//
// The process is this program again (or Path) with ProverCommand: it reads the keys that Setup
// cached (OpenCached, a fraction of a second), the witness on stdin, proves, verifies, and
// writes the proof on stdout. Subprocess verifies it once more before returning it. Exit codes
// map to the task's fate: ExitUsage and ExitWitness fail it permanently, the others and a
// death by signal (the OOM killer's SIGKILL) are transient, retried with backoff.
type Subprocess[I any] struct {
	// Keys are the circuit's, from Setup in this process, which also caches them for the
	// prover process. Required.
	Keys *Keys
	// Assign turns an input into the circuit's full assignment, every wire set. Required.
	Assign func(input I) (frontend.Circuit, error)
	// Path is the prover program. Empty means this program (os.Executable), with Args
	// defaulting to ProverCommand.
	Path string
	// Args come before the arguments Subprocess adds (-cache, -circuit, -scheme).
	Args []string
	// Env is added to the environment of the process, as in exechost.Host.
	Env []string
	// Grace is how long a process has between SIGTERM and SIGKILL; zero means
	// exechost.DefaultGrace.
	Grace time.Duration
}

var _ handler.Host[struct{}] = (*Subprocess[struct{}])(nil)

// Prove proves input in a new prover process and returns the proof, verified. If ctx ends
// first, Prove returns once the process has gone.
func (s *Subprocess[I]) Prove(ctx context.Context, input I) (paas.Proof, error) {
	if s.Keys == nil || s.Assign == nil {
		return paas.Proof{}, paas.Permanent(fmt.Errorf("%w: gnarkhost.Subprocess needs Keys and Assign", handler.ErrIncomplete))
	}
	full, err := assign(s.Keys, s.Assign, input)
	if err != nil {
		return paas.Proof{}, err
	}
	in, err := full.MarshalBinary()
	if err != nil {
		return paas.Proof{}, fmt.Errorf("gnarkhost: encode witness: %w", err)
	}
	path, args := s.Path, s.Args
	if path == "" {
		if path, err = os.Executable(); err != nil {
			return paas.Proof{}, paas.Permanent(fmt.Errorf("gnarkhost: find this program: %w", err))
		}
		if args == nil {
			args = []string{ProverCommand}
		}
	}
	k := s.Keys
	args = append(args[:len(args):len(args)],
		"-cache", filepath.Dir(k.dir), "-circuit", k.ID, "-scheme", string(k.Scheme))
	host := exechost.Host[[]byte]{
		Path: path, Args: args, Env: s.Env, Grace: s.Grace,
		MaxOutput: maxSubprocessOutput,
		Decode:    decodeOutput,
		Exit:      k.exit,
	}
	p, err := host.Prove(ctx, in)
	if err != nil {
		return paas.Proof{}, err
	}
	if err := k.Verify(p); err != nil {
		return paas.Proof{}, fmt.Errorf("gnarkhost: the proof of a prover process failed verification: %w", err)
	}
	return p, nil
}

// exit maps a prover process's exit to the task's fate, and repairs a cache the process could
// not read.
func (k *Keys) exit(e *exechost.ExitError) error {
	switch e.Code {
	case ExitUsage, ExitWitness:
		return paas.Permanent(e)
	case ExitCache:
		if err := k.repair(); err != nil {
			return fmt.Errorf("%w (and writing the cache again failed: %w)", e, err)
		}
	}
	return e
}

// output is what a prover process writes on stdout.
type output struct {
	Receipt []byte `json:"receipt"`
	Public  []byte `json:"public"`
}

func decodeOutput(b []byte) (paas.Proof, error) {
	var o output
	if err := json.Unmarshal(b, &o); err != nil {
		return paas.Proof{}, fmt.Errorf("gnarkhost: decode prover output: %w", err)
	}
	return paas.Proof{Receipt: o.Receipt, PublicValues: o.Public}, nil
}

// ProverMain is the prover process of Subprocess: given the arguments after ProverCommand, it
// reads the cached keys and a witness from stdin, proves, verifies, writes the proof to
// stdout, and returns the exit code (0, or one of the Exit constants), with a message on
// stderr when it is not 0.
func ProverMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(ProverCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cache := fs.String("cache", "", "the key cache directory (Config.CacheDir)")
	id := fs.String("circuit", "", "the circuit id")
	scheme := fs.String("scheme", "", "groth16 or plonk")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if *cache == "" || *id == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "gnark-prove: want -cache DIR -circuit ID -scheme groth16|plonk")
		return ExitUsage
	}
	fail := func(code int, err error) int {
		fmt.Fprintf(stderr, "gnark-prove %s: %v\n", *id, err)
		return code
	}
	k, err := OpenCached(*cache, *id, Scheme(*scheme))
	if errors.Is(err, ErrInvalidCircuit) {
		return fail(ExitUsage, err)
	}
	if err != nil {
		return fail(ExitCache, err)
	}
	in, err := io.ReadAll(stdin)
	if err != nil {
		return fail(ExitFailed, err)
	}
	full, err := witness.New(curve.ScalarField())
	if err == nil {
		err = full.UnmarshalBinary(in)
	}
	if err != nil {
		return fail(ExitWitness, fmt.Errorf("decode witness: %w", err))
	}
	p, err := k.proveWitness(full)
	if errors.Is(err, ErrWitness) {
		return fail(ExitWitness, err)
	}
	if err != nil {
		return fail(ExitFailed, err)
	}
	if err := json.NewEncoder(stdout).Encode(output{Receipt: p.Receipt, Public: p.PublicValues}); err != nil {
		return fail(ExitFailed, err)
	}
	return 0
}
