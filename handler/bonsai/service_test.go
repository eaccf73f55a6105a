package bonsai_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/handler/bonsai/bonsaitest"
	"github.com/zkpaas/paas/service"
	"github.com/zkpaas/paas/store/memory"
)

// startNode starts a service that proves blocks on srv with store, and stops it at the end of
// the test if the test has not.
func startNode(t *testing.T, srv *bonsaitest.Server, store paas.TaskStore, proofs paas.ProofStorer) *service.ProverService {
	t.Helper()
	svc, err := service.New(paas.Config{
		Workers: map[paas.Backend]int64{paas.BackendRisc0: 1},
	}, store, map[paas.RoutingKey]handler.ProofHandler{"block": proofHandler(newHost(srv), proofs)})
	require.NoError(t, err)
	require.NoError(t, svc.Start(bounded(t)))
	t.Cleanup(func() { stopNow(svc) })
	return svc
}

// stopNow stops svc without waiting for its running attempts: they are interrupted at once.
func stopNow(svc *service.ProverService) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = svc.Stop(ctx)
	<-svc.Stopped()
}

// Through the service, the causes are the service's own: a Cancel stops the session, a Stop
// leaves it running for the next Start, which polls it to its end.
func TestThroughTheServiceACancelStopsTheSessionAndAStopLeavesItToTheNextStart(t *testing.T) {
	srv := newServer(t, bonsaitest.WithScript(bonsaitest.HeldScript()))
	store, proofs := memory.New(), memory.NewProofStore()
	ctx := bounded(t)
	svc := startNode(t, srv, store, proofs)
	h := svc.Handle()

	cancelled, err := h.Submit(ctx, block{N: 1}, paas.BackendRisc0)
	require.NoError(t, err)
	waitFor(t, srv, "the first session polled", polled)
	require.NoError(t, h.Cancel(ctx, cancelled))
	res, err := h.Wait(ctx, cancelled)
	require.NoError(t, err)
	assert.Equal(t, paas.Cancelled, res.State)
	assert.Equal(t, 1, srv.Counts().Stops)
	assert.Equal(t, bonsaitest.Aborted, srv.Sessions()[0].Status)

	before := srv.Counts()
	interrupted, err := h.Submit(ctx, block{N: 2}, paas.BackendRisc0)
	require.NoError(t, err)
	waitFor(t, srv, "the second session polled", func(c bonsaitest.Counts) bool {
		return c.SessionsCreated == 2 && c.StatusPolls > before.StatusPolls
	})
	stopNow(svc)
	assert.Equal(t, 1, srv.Counts().Stops, "a stop of the service stops no session")
	session := srv.Sessions()[1]
	assert.Equal(t, bonsaitest.Running, session.Status)

	svc = startNode(t, srv, store, proofs)
	require.NoError(t, srv.Release(session.ID))
	res, err = svc.Handle().Wait(ctx, interrupted)
	require.NoError(t, err)
	require.Equal(t, paas.Completed, res.State, res.Error)
	p, err := proofs.Proof(ctx, interrupted)
	require.NoError(t, err)
	assert.Equal(t, bonsaitest.Receipt(imageID, block{N: 2}.input()), p.Receipt)
	assert.Equal(t, 2, srv.Counts().SessionsCreated, "one per task")
}
