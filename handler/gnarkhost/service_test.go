package gnarkhost_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/handler/gnarkhost"
	"github.com/zkpaas/paas/service"
	"github.com/zkpaas/paas/store/memory"
)

// chainProgram is a task: prove the chain from X.
type chainProgram struct{ X uint64 }

func (chainProgram) RoutingKey() paas.RoutingKey { return "chain" }

func TestProofsMadeThroughTheServiceVerify(t *testing.T) {
	dir := t.TempDir()
	groth16 := setup(t, dir, chainCircuit("chain", gnarkhost.Groth16))
	plonk := setup(t, dir, chainCircuit("chain", gnarkhost.PLONK))
	const inProcess, inSubprocess, onPLONK paas.Backend = "groth16", "groth16-subprocess", "plonk"
	keys := map[paas.Backend]*gnarkhost.Keys{inProcess: groth16, inSubprocess: groth16, onPLONK: plonk}

	store, proofs := memory.New(), memory.NewProofStore()
	h := &handler.RemoteProofHandler[chainProgram, uint64]{
		Fetcher: handler.InputFetcherFunc[chainProgram, uint64](func(_ context.Context, p chainProgram) (uint64, error) {
			return p.X, nil
		}),
		Hosts: handler.HostMap[uint64]{
			inProcess:    &gnarkhost.Host[uint64]{Keys: groth16, Assign: assignChain},
			inSubprocess: subprocess(groth16, "prove"),
			onPLONK:      &gnarkhost.Host[uint64]{Keys: plonk, Assign: assignChain},
		},
		Storer: proofs,
	}
	svc, err := service.New(paas.Config{
		Workers: map[paas.Backend]int64{inProcess: 1, inSubprocess: 1, onPLONK: 1},
	}, store, map[paas.RoutingKey]handler.ProofHandler{"chain": h})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, svc.Start(ctx))
	defer func() { require.NoError(t, svc.Stop(context.Background())) }()

	for backend, k := range keys {
		for x := range uint64(2) {
			res, err := svc.Handle().Execute(ctx, chainProgram{X: x}, backend)
			require.NoError(t, err)
			require.Equal(t, paas.Completed, res.State, "%s: %s", backend, res.Error)
			p, err := proofs.Proof(ctx, res.ID)
			require.NoError(t, err)
			require.Equal(t, backend, p.Backend)
			require.NoError(t, k.Verify(p), backend)
			public, err := gnarkhost.PublicWitness(p)
			require.NoError(t, err)
			require.Equal(t, chainOut(x, rounds).String(), publicValue(t, public))
		}
	}
}
