package bolt_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/store/bolt"
)

func TestProofs(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	s, err := bolt.Open(path, fast)
	require.NoError(t, err)

	id, native := paas.NewTaskID(), paas.NewTaskID()
	first := paas.Proof{Backend: paas.BackendSP1, Receipt: []byte("r1"), PublicValues: []byte("55")}
	again := paas.Proof{Backend: paas.BackendSP1, Receipt: []byte("r2"), PublicValues: []byte("55")}
	require.NoError(t, s.StoreProof(ctx, id, first))
	require.NoError(t, s.StoreProof(ctx, id, first), "storing the same proof again must succeed")
	require.NoError(t, s.StoreProof(ctx, id, again), "a re-run attempt may store a new receipt")
	require.NoError(t, s.StoreProof(ctx, native, paas.Proof{Backend: paas.BackendNative, PublicValues: []byte("1")}))

	got, err := s.Proof(ctx, id)
	require.NoError(t, err)
	require.Equal(t, again, got, "the last proof stored wins")
	got.Receipt[0] = 'X' // must not reach the store
	got, err = s.Proof(ctx, id)
	require.NoError(t, err)
	require.Equal(t, again, got)

	unknown := paas.NewTaskID()
	_, err = s.Proof(ctx, unknown)
	require.ErrorIs(t, err, paas.ErrProofNotFound)
	require.ErrorContains(t, err, unknown.String())

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, s.StoreProof(cancelled, unknown, first), context.Canceled)
	_, err = s.Proof(cancelled, id)
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, s.Close())

	s = openT(t, path, fast)
	got, err = s.Proof(ctx, id)
	require.NoError(t, err)
	require.Equal(t, again, got, "proofs must survive a reopen")
	got, err = s.Proof(ctx, native)
	require.NoError(t, err)
	require.Nil(t, got.Receipt, "a native proof has no receipt, and reads back without one")
	_, err = s.Proof(ctx, unknown)
	require.ErrorIs(t, err, paas.ErrProofNotFound, "a proof stored under a cancelled context must not exist")
}
