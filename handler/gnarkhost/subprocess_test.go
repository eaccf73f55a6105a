package gnarkhost_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas/handler/exechost"
	"github.com/zkpaas/paas/handler/gnarkhost"
)

// subprocess is a Subprocess host of k whose prover process is the test binary in mode.
func subprocess(k *gnarkhost.Keys, mode string, env ...string) *gnarkhost.Subprocess[uint64] {
	return &gnarkhost.Subprocess[uint64]{
		Keys: k, Assign: assignChain,
		Env: append([]string{childEnv + "=" + mode}, env...),
	}
}

func TestASubprocessProofVerifies(t *testing.T) {
	dir := t.TempDir()
	for _, scheme := range schemes {
		t.Run(string(scheme), func(t *testing.T) {
			k := setup(t, dir, chainCircuit("chain", scheme))
			p, err := subprocess(k, "prove").Prove(context.Background(), 11)
			require.NoError(t, err)
			require.NoError(t, k.Verify(p))
			public, err := gnarkhost.PublicWitness(p)
			require.NoError(t, err)
			assert.Equal(t, chainOut(11, rounds).String(), publicValue(t, public))
		})
	}
}

func TestCancellingASubprocessProofEndsTheProcessWithinASecond(t *testing.T) {
	k := setup(t, t.TempDir(), chainCircuit("chain", gnarkhost.Groth16))
	fifo := filepath.Join(t.TempDir(), "pids")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	host := subprocess(k, "busy", fifoEnv+"="+fifo)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := host.Prove(ctx, 4)
		done <- err
	}()
	f, err := os.Open(fifo) // blocks until the prover process opens it for writing
	require.NoError(t, err)
	line, err := bufio.NewReader(f).ReadString('\n')
	f.Close()
	require.NoError(t, err)
	pid, err := strconv.Atoi(line[:len(line)-1])
	require.NoError(t, err)

	// The process is proving now, and keeps proving until it is stopped.
	cancelled := time.Now()
	cancel()
	err = <-done
	gone := time.Since(cancelled)
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "the prover process is still there")
	assert.Less(t, gone, time.Second, "cancel took %v to end the prover process", gone)
}

func TestAPanickingProverFailsItsAttemptNotTheNode(t *testing.T) {
	k := setup(t, t.TempDir(), chainCircuit("chain", gnarkhost.Groth16))
	_, err := subprocess(k, "panic").Prove(context.Background(), 4)
	exit, ok := errors.AsType[*exechost.ExitError](err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, 2, exit.Code) // how the Go runtime exits on a panic
	assert.Contains(t, exit.Stderr, "a prover with a bug")
	assert.False(t, isPermanent(err), "a crash is retried")
}

func TestAProverThatIsNotWiredUpFailsPermanently(t *testing.T) {
	k := setup(t, t.TempDir(), chainCircuit("chain", gnarkhost.Groth16))
	host := subprocess(k, "prove")
	host.Args = []string{gnarkhost.ProverCommand, "-unknown-flag"}
	_, err := host.Prove(context.Background(), 4)
	assert.True(t, exechost.IsExit(err, gnarkhost.ExitUsage), "%v", err)
	assert.True(t, isPermanent(err), "%v", err)
}

func TestAProverThatFindsTheCacheDamagedHasItRepaired(t *testing.T) {
	root := t.TempDir()
	k := setup(t, root, chainCircuit("chain", gnarkhost.Groth16))
	flip(t, filepath.Join(root, "chain.groth16", "pk.bin"), 2000)

	host := subprocess(k, "prove")
	_, err := host.Prove(context.Background(), 4)
	assert.True(t, exechost.IsExit(err, gnarkhost.ExitCache), "%v", err)
	assert.False(t, isPermanent(err), "a damaged cache is retried")

	p, err := host.Prove(context.Background(), 4)
	require.NoError(t, err, "the cache was not written again")
	require.NoError(t, k.Verify(p))
}
