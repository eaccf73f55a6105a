package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/zkpaas/paas/handler/bonsai/bonsaitest"
	"github.com/zkpaas/paas/handler/gnarkhost"
)

func TestMain(m *testing.M) {
	// With -isolate, the test binary is the prover process, as the node's binary is.
	if len(os.Args) > 1 && os.Args[1] == gnarkhost.ProverCommand {
		os.Exit(gnarkhost.ProverMain(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

// tiny is a batch that proves in seconds: 4 blocks in 2 epochs, 8 tasks.
func tiny(t *testing.T) options {
	return options{dataDir: t.TempDir(), blocks: 4, epoch: 2, rounds: 2, workers: 1, failRate: 0.5, progress: progressLines}
}

func TestTheNodeProvesAndVerifiesItsBatchThenFindsItDone(t *testing.T) {
	opts := tiny(t)
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out, opts))
	first := out.String()
	assert.Contains(t, first, "set up in")
	assert.Contains(t, first, "8 tasks; 0 already done")
	assert.Contains(t, first, "verified 8 of 8 proofs")
	assert.Regexp(t, `(?m)^\s*transition 3\s+gnark-groth16\s+completed\s+\d+\s+164\s+\S+\s+ok`, first)
	assert.Regexp(t, `(?m)^\s*checkpoint 1\s+gnark-plonk\s+completed`, first)
	assert.Regexp(t, `(?m)^\s*gnark-groth16\s+1\s+4\s`, first, "four transitions proven")
	retried := regexp.MustCompile(`(?m)completed\s+([2-9])\s`).FindAllString(first, -1)
	assert.NotEmpty(t, retried, "a failure rate of 0.5 retried nothing:\n%s", first)

	out.Reset()
	require.NoError(t, run(context.Background(), &out, opts))
	second := out.String()
	assert.Contains(t, second, "read from the cache")
	assert.NotContains(t, second, "set up in")
	assert.Contains(t, second, "8 tasks; 8 already done")
	assert.Contains(t, second, "verified 8 of 8 proofs")
	assert.Equal(t, 8, strings.Count(second, "earlier run"), "a proof was made again:\n%s", second)
}

func TestAStoppedNodeResumesWhereItStopped(t *testing.T) {
	opts := tiny(t)
	opts.blocks, opts.failRate = 8, 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Stop the node as soon as it has submitted its batch, as Ctrl-C would.
	out := &watcher{on: "batch:", do: cancel}
	require.NoError(t, run(ctx, out, opts))
	assert.Contains(t, out.String(), "run again to resume")

	var again bytes.Buffer
	require.NoError(t, run(context.Background(), &again, opts))
	assert.Contains(t, again.String(), "verified 16 of 16 proofs")
}

func TestAnIsolatedNodeProvesInProverProcesses(t *testing.T) {
	opts := tiny(t)
	opts.isolate, opts.failRate = true, 0
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out, opts))
	assert.Contains(t, out.String(), "verified 8 of 8 proofs")
}

func TestExecutionsAreProvenOnBonsaiWhenItIsConfigured(t *testing.T) {
	srv := bonsaitest.New()
	defer srv.Close()
	opts := tiny(t)
	opts.failRate = 0
	opts.bonsaiURL, opts.bonsaiKey, opts.bonsaiVersion = srv.URL, srv.APIKey, srv.Version
	opts.bonsaiImage, opts.bonsaiELF = strings.Repeat("ab", 32), writeFile(t, []byte("a guest"))
	opts.bonsaiPoll = time.Millisecond
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out, opts))
	assert.Contains(t, out.String(), "10 tasks; 0 already done")
	assert.Contains(t, out.String(), "verified 8 of 8 proofs; 2 Risc0 receipts are for Risc0's verifier")
	assert.Regexp(t, `(?m)^\s*execution 1\s+risc0\s+completed`, out.String())
	c := srv.Counts()
	assert.Equal(t, 2, c.SessionsCreated, "one session per epoch")
	assert.Zero(t, c.HeaderFailures)
}

func writeFile(t *testing.T, b []byte) string {
	t.Helper()
	path := t.TempDir() + "/file"
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

func TestBadFlagsAreRefused(t *testing.T) {
	for _, o := range []options{
		{blocks: 0, epoch: 1, rounds: 1, workers: 1, progress: progressNone},
		{blocks: 1, epoch: 1, rounds: 1, workers: 0, progress: progressNone},
		{blocks: 1, epoch: 1, rounds: 1, workers: 1, failRate: 1, progress: progressNone},
		{blocks: 1, epoch: 1, rounds: 1, workers: 1, progress: "fancy"},
	} {
		o.dataDir = t.TempDir()
		assert.Error(t, run(context.Background(), &bytes.Buffer{}, o), "%+v", o)
	}
}

// watcher is an output that calls do once a line containing on is written.
type watcher struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	on   string
	do   func()
	done bool
}

func (w *watcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.done && strings.Contains(w.buf.String(), w.on) {
		w.done = true
		w.do()
	}
	return len(p), nil
}

func (w *watcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
