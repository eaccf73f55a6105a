// Package exechost runs an external prover program for each proof: how a Go node drives the
// Rust host programs of SP1 and Risc0, or any prover that is a command.
//
// A Host is a handler.Host: for every input it starts the configured command in a process
// group of its own, gives it the input on stdin (or in a file), reads the proof from stdout
// (or from a file), and returns it. The process is the unit of failure: a cancelled task or
// an attempt past its timeout has its whole process group sent SIGTERM, then SIGKILL after
// Grace; a crash, a panic or the kernel's OOM killer end the process, not the node. A
// non-zero exit becomes an *ExitError that carries the tail of the program's stderr, which
// the Host's Exit function may turn into a permanent failure or a retry after a delay.
//
//	sp1 := &exechost.Host[[]byte]{
//		Path: "/opt/prover/fib-script", // a Rust host program built with sp1-sdk
//		Args: []string{"--prove"},
//		Env:  []string{"SP1_PROVER=cpu"}, // or cuda, network (with NETWORK_PRIVATE_KEY)
//		Exit: func(e *exechost.ExitError) error {
//			if e.Code == 2 { // the script's code for an input the program rejects
//				return paas.Permanent(e)
//			}
//			return e // transient: retried with backoff
//		},
//	}
//
// A Risc0 host program reads RISC0_PROVER (local, bonsai with BONSAI_API_URL and
// BONSAI_API_KEY, or ipc with RISC0_SERVER_PATH naming r0vm) the same way, from Env. The
// program's contract with the Host is small: read the input, write the proof (the receipt
// bytes, or what Decode makes of them), exit 0; exit non-zero, with a message on stderr,
// otherwise.
//
// exechost.go holds Host and Prove; exit.go ExitError; output.go the bounded buffers.
package exechost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/zkpaas/paas"
)

// Defaults of a Host's zero fields.
const (
	DefaultGrace      = 5 * time.Second
	DefaultMaxOutput  = 64 << 20 // 64 MiB: a proof, not a log
	DefaultStderrTail = 4 << 10
)

// Placeholders in Args, replaced by the paths of the files a Host makes for the process when
// InputFile or OutputFile is set.
const (
	InputPlaceholder  = "{input}"
	OutputPlaceholder = "{output}"
)

// Host runs Path with Args for every input it proves. The zero value of every field but Path
// is usable. A Host is safe for concurrent use: each Prove runs a process of its own.
type Host[I any] struct {
	// Path is the program to run. Required.
	Path string
	// Args are its arguments. With InputFile or OutputFile set, the arguments "{input}" and
	// "{output}" are replaced by the paths of the input and output files.
	Args []string
	// Env is added to the node's environment for the process (KEY=value), after it, so
	// that it wins.
	Env []string
	// Dir is the working directory of the process; empty means the node's.
	Dir string

	// InputFile gives the input in a file, named by "{input}" in Args, instead of on stdin.
	InputFile bool
	// OutputFile reads the proof from a file, named by "{output}" in Args, instead of from
	// stdout. The program's stdout is then discarded.
	OutputFile bool
	// MaxOutput bounds the proof's size in bytes; a program that writes more fails the
	// attempt permanently. Zero means DefaultMaxOutput.
	MaxOutput int64
	// Grace is how long a process has, after SIGTERM, to exit before its group is sent
	// SIGKILL. Zero means DefaultGrace.
	Grace time.Duration

	// Encode turns an input into the bytes the program reads. Nil means the input is a
	// []byte, or a string, given as it is.
	Encode func(input I) ([]byte, error)
	// Decode turns the program's output into a proof. Nil means the output is the proof's
	// Receipt.
	Decode func(output []byte) (paas.Proof, error)
	// Exit decides what a non-zero exit, or the death of the process by a signal, means for
	// the task: return e as it is for a transient failure (the default, with a nil Exit),
	// paas.Permanent(e) for one that trying again cannot fix, paas.RetryAfter(e, d) to try
	// again after d.
	Exit func(e *ExitError) error
}

// Prove runs the program on input and returns its proof. It implements handler.Host.
//
// If ctx ends first, the process group is sent SIGTERM, then SIGKILL after Grace, and Prove
// returns ctx's error once the process has gone; no process of the group outlives Prove.
func (h *Host[I]) Prove(ctx context.Context, input I) (paas.Proof, error) {
	if h.Path == "" {
		return paas.Proof{}, paas.Permanent(errors.New("exechost: Host has no Path"))
	}
	in, err := h.encode(input)
	if err != nil {
		return paas.Proof{}, paas.Permanent(fmt.Errorf("exechost: encode input: %w", err))
	}
	dir := ""
	if h.InputFile || h.OutputFile {
		if dir, err = os.MkdirTemp("", "exechost-"); err != nil {
			return paas.Proof{}, fmt.Errorf("exechost: %w", err)
		}
		defer os.RemoveAll(dir)
	}
	args, inPath, outPath := h.args(dir)

	cmd := exec.CommandContext(ctx, h.Path, args...)
	cmd.Dir = h.Dir
	if len(h.Env) > 0 {
		cmd.Env = append(os.Environ(), h.Env...)
	}
	// A process group of its own, so that cancellation reaches the helpers it starts too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return signalGroup(cmd, syscall.SIGTERM) }
	cmd.WaitDelay = h.grace()

	if h.InputFile {
		if err := os.WriteFile(inPath, in, 0o600); err != nil {
			return paas.Proof{}, fmt.Errorf("exechost: write input: %w", err)
		}
	} else {
		cmd.Stdin = bytes.NewReader(in)
	}
	stdout := &limitedBuffer{max: h.maxOutput()}
	if !h.OutputFile {
		cmd.Stdout = stdout
	}
	stderr := &tailBuffer{max: DefaultStderrTail}
	cmd.Stderr = stderr

	err = cmd.Run()
	// Whatever the leader did, no member of its group may outlive the attempt.
	_ = signalGroup(cmd, syscall.SIGKILL)
	switch {
	case ctx.Err() != nil:
		return paas.Proof{}, ctx.Err()
	case stdout.overflow:
		return paas.Proof{}, paas.Permanent(fmt.Errorf("exechost: %s wrote more than %d bytes of output", h.Path, stdout.max))
	case err != nil:
		if exitErr, ok := errors.AsType[*exec.ExitError](err); ok {
			return paas.Proof{}, h.exit(newExitError(h.Path, exitErr, stderr.String()))
		}
		return paas.Proof{}, fmt.Errorf("exechost: run %s: %w", h.Path, err)
	}
	out := stdout.Bytes()
	if h.OutputFile {
		if out, err = readBounded(outPath, h.maxOutput()); err != nil {
			return paas.Proof{}, err
		}
	}
	return h.decode(out)
}

func (h *Host[I]) encode(input I) ([]byte, error) {
	if h.Encode != nil {
		return h.Encode(input)
	}
	switch in := any(input).(type) {
	case []byte:
		return in, nil
	case string:
		return []byte(in), nil
	}
	return nil, fmt.Errorf("an input of type %T needs an Encode", input)
}

func (h *Host[I]) decode(out []byte) (paas.Proof, error) {
	if h.Decode == nil {
		return paas.Proof{Receipt: out}, nil
	}
	p, err := h.Decode(out)
	if err != nil {
		return paas.Proof{}, paas.Permanent(fmt.Errorf("exechost: decode the output of %s: %w", h.Path, err))
	}
	return p, nil
}

func (h *Host[I]) exit(e *ExitError) error {
	if h.Exit == nil {
		return e
	}
	return h.Exit(e)
}

// args returns the arguments with the placeholders replaced by paths in dir.
func (h *Host[I]) args(dir string) (args []string, in, out string) {
	in, out = filepath.Join(dir, "input"), filepath.Join(dir, "output")
	args = make([]string, len(h.Args))
	for i, a := range h.Args {
		switch {
		case h.InputFile && a == InputPlaceholder:
			a = in
		case h.OutputFile && a == OutputPlaceholder:
			a = out
		}
		args[i] = a
	}
	return args, in, out
}

func (h *Host[I]) grace() time.Duration {
	if h.Grace > 0 {
		return h.Grace
	}
	return DefaultGrace
}

func (h *Host[I]) maxOutput() int64 {
	if h.MaxOutput > 0 {
		return h.MaxOutput
	}
	return DefaultMaxOutput
}

// signalGroup sends sig to the process group of cmd's process, if it was started.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) error {
	if cmd.Process == nil {
		return nil
	}
	err := syscall.Kill(-cmd.Process.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil // gone already
	}
	return err
}

// readBounded reads the file at path, failing permanently past max bytes.
func readBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, paas.Permanent(fmt.Errorf("exechost: the program wrote no output file: %w", err))
	}
	defer f.Close()
	b := &limitedBuffer{max: max}
	if _, err := b.ReadFrom(f); err != nil {
		return nil, fmt.Errorf("exechost: read output: %w", err)
	}
	if b.overflow {
		return nil, paas.Permanent(fmt.Errorf("exechost: output file of more than %d bytes", max))
	}
	return b.Bytes(), nil
}

// shorten trims s to its last n bytes, on a line boundary if it can.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 && i < len(s)-1 {
		s = s[i+1:]
	}
	return "…" + s
}
