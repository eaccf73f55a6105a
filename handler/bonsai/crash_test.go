package bonsai_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/handler/bonsai"
	"github.com/zkpaas/paas/handler/bonsai/bonsaitest"
	"github.com/zkpaas/paas/service"
	"github.com/zkpaas/paas/store/bolt"
)

// The node of the crash test is this test binary, re-executed with these variables set: the
// path of its bolt file, and the fake server's URL. Its key and version are the fake's
// defaults.
const (
	nodeDBEnv  = "BONSAI_TEST_NODE_DB"
	nodeURLEnv = "BONSAI_TEST_NODE_URL"
)

// crashBlock is the task the node submits.
var crashBlock = block{N: 42}

// newNodeService is the node's service, the same in the child and in the parent after the
// kill: one Risc0 worker proving blocks on the server at url with a bonsai.Host, tasks and
// proofs in store.
func newNodeService(store *bolt.Store, url string) (*service.ProverService, error) {
	host := &bonsai.Host[[]byte]{
		Client: &bonsai.Client{
			BaseURL: url, APIKey: bonsaitest.DefaultAPIKey, Version: bonsaitest.DefaultVersion,
			Retry: bonsai.Retry{BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond},
		},
		ImageID:      imageID,
		ELF:          guestELF,
		PollInterval: 5 * time.Millisecond,
	}
	return service.New(paas.Config{
		Workers: map[paas.Backend]int64{paas.BackendRisc0: 1},
	}, store, map[paas.RoutingKey]handler.ProofHandler{"block": proofHandler(host, store)})
}

// node is the main of the child: it submits crashBlock and waits for it, until it is killed.
func node(path string) int {
	fail := func(what string, err error) int {
		fmt.Fprintf(os.Stderr, "node: %s: %v\n", what, err)
		return 2
	}
	store, err := bolt.Open(path, &bolt.Options{LockTimeout: 10 * time.Second})
	if err != nil {
		return fail("open", err)
	}
	defer store.Close()
	svc, err := newNodeService(store, os.Getenv(nodeURLEnv))
	if err != nil {
		return fail("new", err)
	}
	ctx := context.Background()
	if err := svc.Start(ctx); err != nil {
		return fail("start", err)
	}
	defer svc.Stop(ctx)
	id, err := svc.Handle().Submit(ctx, crashBlock, paas.BackendRisc0)
	if err != nil {
		return fail("submit", err)
	}
	res, err := svc.Handle().Wait(ctx, id) // the session is held: the kill comes first
	return fail("the task ended before the kill", fmt.Errorf("%+v, %v", res, err))
}

// THE test of this package: a node killed while its paid session runs. After the restart the
// same session is polled to its end, and the server has been asked for one session in all.
func TestANodeKilledWhileItsSessionRunsResumesThatSession(t *testing.T) {
	srv := newServer(t, bonsaitest.WithScript(bonsaitest.HeldScript()))
	path := filepath.Join(t.TempDir(), "node.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), nodeDBEnv+"="+path, nodeURLEnv+"="+srv.URL)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})

	waitFor(t, srv, "the child's session to be created and polled", func(c bonsaitest.Counts) bool {
		return c.SessionsCreated == 1 && c.StatusPolls >= 1
	})
	require.NoError(t, cmd.Process.Kill()) // SIGKILL: no Stop, no deferred call runs
	err := cmd.Wait()
	killed = true
	require.Error(t, err, "the child must have been killed, not have exited: %s", stderr.String())
	sessions := srv.Sessions()
	require.Len(t, sessions, 1)
	session := sessions[0]
	assert.Equal(t, bonsaitest.Running, session.Status, "the session runs on while the node is down")
	assert.Zero(t, srv.Counts().Stops)

	store, err := bolt.Open(path, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	ctx := bounded(t)
	// The checkpoint was on disk before the first poll, so before the kill.
	unfinished, err := store.Unfinished(ctx)
	require.NoError(t, err)
	require.Len(t, unfinished, 1)
	assert.Equal(t, paas.InProgress, unfinished[0].State, "killed mid-attempt")
	cp, err := bonsai.ParseCheckpoint(unfinished[0].Checkpoint)
	require.NoError(t, err)
	assert.Equal(t, session.ID, cp.Session)

	svc, err := newNodeService(store, srv.URL)
	require.NoError(t, err)
	require.NoError(t, svc.Start(ctx))
	t.Cleanup(func() { stopNow(svc) })
	id, err := svc.Handle().Submit(ctx, crashBlock, paas.BackendRisc0) // the same task, not a new one
	require.NoError(t, err)
	assert.Equal(t, unfinished[0].ID, id)
	polls := srv.Counts().StatusPolls
	waitFor(t, srv, "the restarted node to poll", func(c bonsaitest.Counts) bool { return c.StatusPolls > polls })
	require.NoError(t, srv.Finish(session.ID, bonsaitest.Succeeded, ""))

	res, err := svc.Handle().Wait(ctx, id)
	require.NoError(t, err)
	require.Equal(t, paas.Completed, res.State, res.Error)
	p, err := store.Proof(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, bonsaitest.Receipt(imageID, crashBlock.input()), p.Receipt)
	assert.Equal(t, paas.BackendRisc0, p.Backend)
	c := srv.Counts()
	assert.Equal(t, 1, c.SessionsCreated, "one session paid for, across the kill")
	assert.Equal(t, 1, c.InputUploads)
	assert.Zero(t, c.Stops)
	assert.Zero(t, c.HeaderFailures)
}
