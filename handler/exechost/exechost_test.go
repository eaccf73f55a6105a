package exechost_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/clock"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/handler/exechost"
	"github.com/zkpaas/paas/service"
	"github.com/zkpaas/paas/store/memory"
)

// The provers of these tests are this test binary, re-executed with proverEnv naming what it
// does: each mode stands for a kind of prover program a node meets.
const (
	proverEnv = "EXECHOST_PROVER"
	fifoEnv   = "EXECHOST_FIFO" // where a prover that blocks writes its pids, then blocks
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(proverEnv); mode != "" {
		os.Exit(prover(mode))
	}
	goleak.VerifyTestMain(m)
}

// prover is the main of a prover program.
func prover(mode string) int {
	switch mode {
	case "echo": // a prover that works: the proof of an input is "proof of " and the input
		in, _ := io.ReadAll(os.Stdin)
		fmt.Printf("proof of %s", in)
		return 0
	case "files": // reads its input from argv[1], writes its proof to argv[2]
		in, err := os.ReadFile(os.Args[1])
		if err != nil {
			return 9
		}
		return map[bool]int{true: 0, false: 9}[os.WriteFile(os.Args[2], append([]byte("proof of "), in...), 0o600) == nil]
	case "slow": // takes its time, then proves
		time.Sleep(200 * time.Millisecond)
		in, _ := io.ReadAll(os.Stdin)
		fmt.Printf("proof of %s", in)
		return 0
	case "fail": // rejects its input
		fmt.Fprintln(os.Stderr, "guest panicked: the input is not a valid block")
		return 3
	case "noisy": // writes far more to stderr than anyone keeps, then fails
		for i := range 20000 {
			fmt.Fprintf(os.Stderr, "log line %d\n", i)
		}
		fmt.Fprintln(os.Stderr, "the last line says why")
		return 1
	case "huge": // writes more than any proof is
		os.Stdout.Write(bytes.Repeat([]byte("x"), 1<<20))
		return 0
	case "oom": // killed by the kernel, as the OOM killer does
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	case "hang", "stubborn": // starts a helper, says so, then never finishes
		if mode == "stubborn" {
			signal.Ignore(syscall.SIGTERM) // and ignores SIGTERM
		}
		helper := exec.Command(os.Args[0], "-test.run=^$")
		helper.Env = append(os.Environ(), proverEnv+"=helper")
		if err := helper.Start(); err != nil {
			return 9
		}
		f, err := os.OpenFile(os.Getenv(fifoEnv), os.O_WRONLY, 0)
		if err != nil {
			return 9
		}
		fmt.Fprintf(f, "%d %d\n", os.Getpid(), helper.Process.Pid)
		f.Close()
		select {}
	case "helper": // a helper process of a prover, ignoring SIGTERM too
		signal.Ignore(syscall.SIGTERM)
		select {}
	}
	return 9
}

func host(mode string) *exechost.Host[[]byte] {
	return &exechost.Host[[]byte]{Path: os.Args[0], Args: []string{"-test.run=^$"}, Env: []string{proverEnv + "=" + mode}}
}

var _ handler.Host[[]byte] = (*exechost.Host[[]byte])(nil)

func TestAProverProvesOverStdinAndStdout(t *testing.T) {
	p, err := host("echo").Prove(t.Context(), []byte("block 7"))
	require.NoError(t, err)
	assert.Equal(t, "proof of block 7", string(p.Receipt))
}

func TestAProverProvesOverFiles(t *testing.T) {
	h := host("files")
	h.Args = []string{exechost.InputPlaceholder, exechost.OutputPlaceholder}
	h.InputFile, h.OutputFile = true, true
	p, err := h.Prove(t.Context(), []byte("block 8"))
	require.NoError(t, err)
	assert.Equal(t, "proof of block 8", string(p.Receipt))
}

func TestEncodeAndDecodeShapeInputAndProof(t *testing.T) {
	h := &exechost.Host[int]{
		Path: os.Args[0], Args: []string{"-test.run=^$"}, Env: []string{proverEnv + "=echo"},
		Encode: func(n int) ([]byte, error) { return []byte(strconv.Itoa(n)), nil },
		Decode: func(out []byte) (paas.Proof, error) {
			return paas.Proof{PublicValues: bytes.TrimPrefix(out, []byte("proof of ")), Receipt: out}, nil
		},
	}
	p, err := h.Prove(t.Context(), 42)
	require.NoError(t, err)
	assert.Equal(t, "42", string(p.PublicValues))
}

func TestAFailingProverGivesItsExitCodeAndTheTailOfItsStderr(t *testing.T) {
	_, err := host("fail").Prove(t.Context(), nil)
	var exit *exechost.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, 3, exit.Code)
	assert.Contains(t, exit.Stderr, "guest panicked")
	assert.Contains(t, err.Error(), "exit status 3")
	_, permanent := errors.AsType[*paas.PermanentError](err)
	assert.False(t, permanent, "transient unless Exit says otherwise")
	assert.True(t, exechost.IsExit(err, 2, 3))
}

func TestExitMapsCodesToPermanentAndRetryAfter(t *testing.T) {
	h := host("fail")
	h.Exit = func(e *exechost.ExitError) error {
		if e.Code == 3 {
			return paas.Permanent(e)
		}
		return paas.RetryAfter(e, time.Minute)
	}
	_, err := h.Prove(t.Context(), nil)
	_, permanent := errors.AsType[*paas.PermanentError](err)
	assert.True(t, permanent)
	h = host("noisy")
	h.Exit = func(e *exechost.ExitError) error { return paas.RetryAfter(e, time.Minute) }
	_, err = h.Prove(t.Context(), nil)
	after, ok := errors.AsType[*paas.RetryAfterError](err)
	require.True(t, ok)
	assert.Equal(t, time.Minute, after.Delay)
}

func TestStderrIsBoundedToItsTail(t *testing.T) {
	_, err := host("noisy").Prove(t.Context(), nil)
	exit, ok := errors.AsType[*exechost.ExitError](err)
	require.True(t, ok)
	assert.LessOrEqual(t, len(exit.Stderr), exechost.DefaultStderrTail+len("…"))
	assert.True(t, strings.HasSuffix(strings.TrimSpace(exit.Stderr), "the last line says why"), "the tail is what matters")
	assert.NotContains(t, exit.Stderr, "log line 0\n")
}

func TestTooLargeAnOutputFailsPermanently(t *testing.T) {
	h := host("huge")
	h.MaxOutput = 64 << 10
	_, err := h.Prove(t.Context(), nil)
	_, permanent := errors.AsType[*paas.PermanentError](err)
	assert.True(t, permanent, "%v", err)
	assert.ErrorContains(t, err, "more than 65536 bytes")
}

func TestAProverKilledByASignalSaysWhich(t *testing.T) {
	_, err := host("oom").Prove(t.Context(), nil)
	exit, ok := errors.AsType[*exechost.ExitError](err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, -1, exit.Code)
	assert.Equal(t, "killed", exit.Signal)
}

func TestAMissingProgramIsAnError(t *testing.T) {
	h := &exechost.Host[[]byte]{Path: filepath.Join(t.TempDir(), "no-such-prover")}
	_, err := h.Prove(t.Context(), nil)
	require.Error(t, err)
	_, err = (&exechost.Host[[]byte]{}).Prove(t.Context(), nil)
	_, permanent := errors.AsType[*paas.PermanentError](err)
	assert.True(t, permanent, "a Host without a Path is a configuration error")
}

// startBlocking starts a prover that blocks in mode, and returns the pids of it and of its
// helper once it has started them both, and Prove's result when it returns.
func startBlocking(t *testing.T, ctx context.Context, mode string, grace time.Duration) (leader, helper int, result <-chan error) {
	fifo := filepath.Join(t.TempDir(), "pids")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	h := host(mode)
	h.Env = append(h.Env, fifoEnv+"="+fifo)
	h.Grace = grace
	done := make(chan error, 1)
	go func() { _, err := h.Prove(ctx, nil); done <- err }()
	f, err := os.Open(fifo) // blocks until the prover opens it to write
	require.NoError(t, err)
	defer f.Close()
	_, err = fmt.Fscan(f, &leader, &helper)
	require.NoError(t, err)
	return leader, helper, done
}

// requireGone fails unless pid has exited (a zombie not yet reaped by its new parent counts
// as gone). Death follows SIGKILL at once, but is observed through /proc, so allow a moment.
func requireGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs: %s", pid, stat)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCancellationEndsTheWholeProcessGroup(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	leader, helper, done := startBlocking(t, ctx, "hang", time.Second)
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	requireGone(t, leader)
	requireGone(t, helper) // it ignores SIGTERM: the group's SIGKILL ended it
}

func TestAProverThatIgnoresSIGTERMIsKilledAfterTheGrace(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond) // an attempt's deadline
	defer cancel()
	leader, helper, done := startBlocking(t, ctx, "stubborn", 50*time.Millisecond)
	assert.ErrorIs(t, <-done, context.DeadlineExceeded)
	requireGone(t, leader)
	requireGone(t, helper)
}

func TestASlowProverIsWaitedFor(t *testing.T) {
	p, err := host("slow").Prove(t.Context(), []byte("block 9"))
	require.NoError(t, err)
	assert.Equal(t, "proof of block 9", string(p.Receipt))
}

type blockProgram struct{ Height int }

func (blockProgram) RoutingKey() paas.RoutingKey { return "block" }

// Through the service: a prover process past the task's timeout is ended, the attempt is
// retried, and a prover that works completes the task with its proof stored.
func TestThroughTheServiceATimedOutProverIsEndedAndTheTaskRetried(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "pids")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	hang := host("hang")
	hang.Env = append(hang.Env, fifoEnv+"="+fifo)
	hang.Grace = 50 * time.Millisecond
	proofs := memory.NewProofStore()
	h := &handler.RemoteProofHandler[blockProgram, []byte]{
		Fetcher: handler.InputFetcherFunc[blockProgram, []byte](func(_ context.Context, b blockProgram) ([]byte, error) {
			return []byte(strconv.Itoa(b.Height)), nil
		}),
		Hosts:  handler.HostMap[[]byte]{"slow-prover": hang, "prover": host("echo")},
		Storer: proofs,
	}
	fake := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	svc, err := service.New(paas.Config{
		Workers:  map[paas.Backend]int64{"slow-prover": 1, "prover": 1},
		Timeouts: map[paas.Backend]time.Duration{"slow-prover": time.Minute},
		Retry:    &paas.RetryConfig{MaxRetries: paas.Disabled},
		Clock:    fake,
	}, memory.New(), map[paas.RoutingKey]handler.ProofHandler{"block": h})
	require.NoError(t, err)
	ctx := t.Context()
	require.NoError(t, svc.Start(ctx))
	defer svc.Stop(context.Background())

	slow, err := svc.Handle().Submit(ctx, blockProgram{Height: 1}, "slow-prover")
	require.NoError(t, err)
	f, err := os.Open(fifo)
	require.NoError(t, err)
	var leader, helper int
	_, err = fmt.Fscan(f, &leader, &helper)
	require.NoError(t, err)
	f.Close()
	require.NoError(t, fake.WaitForTimers(ctx, 1)) // the attempt's deadline
	fake.Advance(time.Minute)
	res, err := svc.Handle().Wait(ctx, slow)
	require.NoError(t, err)
	assert.Equal(t, paas.Failed, res.State, "timed out, and no retry left")
	assert.Contains(t, res.Error, "timed out")
	requireGone(t, leader)
	requireGone(t, helper)

	res, err = svc.Handle().Execute(ctx, blockProgram{Height: 2}, "prover")
	require.NoError(t, err)
	require.Equal(t, paas.Completed, res.State)
	p, err := proofs.Proof(ctx, res.ID)
	require.NoError(t, err)
	assert.Equal(t, "proof of 2", string(p.Receipt))
}
