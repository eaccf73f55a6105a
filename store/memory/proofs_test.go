package memory_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/store/memory"
)

func TestProofStoreRoundTrip(t *testing.T) {
	for name, newStore := range map[string]func() *memory.ProofStore{
		"NewProofStore": memory.NewProofStore,
		"zero value":    func() *memory.ProofStore { return new(memory.ProofStore) },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			s := newStore()
			require.Zero(t, s.Len())
			id := paas.NewTaskID()
			want := paas.Proof{Backend: paas.BackendSP1, Receipt: []byte("receipt"), PublicValues: []byte("55")}

			require.NoError(t, s.StoreProof(ctx, id, want))

			got, err := s.Proof(ctx, id)
			require.NoError(t, err)
			assert.Equal(t, want, got)
			assert.Equal(t, 1, s.Len())
		})
	}
}

func TestProofStoreKeepsNilReceipt(t *testing.T) {
	ctx := t.Context()
	s := memory.NewProofStore()
	id := paas.NewTaskID()
	require.NoError(t, s.StoreProof(ctx, id, paas.Proof{Backend: paas.BackendNative, PublicValues: []byte("1")}))

	got, err := s.Proof(ctx, id)
	require.NoError(t, err)
	assert.Nil(t, got.Receipt, "a native proof has no receipt, and reads back without one")
}

func TestProofStoreIsIdempotent(t *testing.T) {
	ctx := t.Context()
	s := memory.NewProofStore()
	id := paas.NewTaskID()
	first := paas.Proof{Backend: paas.BackendSP1, Receipt: []byte("r1"), PublicValues: []byte("55")}
	again := paas.Proof{Backend: paas.BackendSP1, Receipt: []byte("r2"), PublicValues: []byte("55")}

	require.NoError(t, s.StoreProof(ctx, id, first))
	require.NoError(t, s.StoreProof(ctx, id, first), "storing the same proof again must succeed")
	require.NoError(t, s.StoreProof(ctx, id, again), "a re-run attempt may store a new receipt")

	assert.Equal(t, 1, s.Len(), "one proof per task")
	got, err := s.Proof(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, again, got, "the last proof stored wins")

	other := paas.NewTaskID()
	require.NoError(t, s.StoreProof(ctx, other, first))
	assert.Equal(t, 2, s.Len())
}

func TestProofStoreCopiesIn(t *testing.T) {
	ctx := t.Context()
	s := memory.NewProofStore()
	id := paas.NewTaskID()
	receipt, public := []byte("receipt"), []byte("55")

	require.NoError(t, s.StoreProof(ctx, id, paas.Proof{Backend: paas.BackendSP1, Receipt: receipt, PublicValues: public}))
	receipt[0], public[0] = 'X', 'X'

	got, err := s.Proof(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "receipt", string(got.Receipt))
	assert.Equal(t, "55", string(got.PublicValues))
}

func TestProofStoreCopiesOut(t *testing.T) {
	ctx := t.Context()
	s := memory.NewProofStore()
	id := paas.NewTaskID()
	require.NoError(t, s.StoreProof(ctx, id, paas.Proof{Backend: paas.BackendSP1, Receipt: []byte("receipt"), PublicValues: []byte("55")}))

	got, err := s.Proof(ctx, id)
	require.NoError(t, err)
	got.Receipt[0], got.PublicValues[0] = 'X', 'X'

	again, err := s.Proof(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "receipt", string(again.Receipt))
	assert.Equal(t, "55", string(again.PublicValues))
}

func TestProofStoreNotFound(t *testing.T) {
	ctx := t.Context()
	for name, s := range map[string]*memory.ProofStore{
		"empty":      memory.NewProofStore(),
		"zero value": new(memory.ProofStore),
	} {
		t.Run(name, func(t *testing.T) {
			id := paas.NewTaskID()
			_, err := s.Proof(ctx, id)
			require.ErrorIs(t, err, paas.ErrProofNotFound)
			assert.ErrorContains(t, err, id.String())
			assert.True(t, strings.HasPrefix(err.Error(), "memory: "), "the message says which store: %v", err)
		})
	}
}

func TestProofStoreCancelledContext(t *testing.T) {
	s := memory.NewProofStore()
	id := paas.NewTaskID()
	require.NoError(t, s.StoreProof(t.Context(), id, paas.Proof{PublicValues: []byte("1")}))

	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	err := s.StoreProof(ctx, paas.NewTaskID(), paas.Proof{PublicValues: []byte("2")})
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, s.Len(), "nothing is stored under a cancelled context")

	_, err = s.Proof(ctx, id)
	require.ErrorIs(t, err, context.Canceled)
	assert.False(t, errors.Is(err, paas.ErrProofNotFound))
}

func TestProofStoreConcurrentUse(t *testing.T) {
	ctx := t.Context()
	s := memory.NewProofStore()
	ids := make([]paas.TaskID, 8)
	for i := range ids {
		ids[i] = paas.NewTaskID()
	}
	var wg sync.WaitGroup
	for range 4 {
		for _, id := range ids {
			wg.Go(func() {
				assert.NoError(t, s.StoreProof(ctx, id, paas.Proof{PublicValues: []byte("v")}))
				_, err := s.Proof(ctx, id)
				assert.NoError(t, err)
				_ = s.Len()
			})
		}
	}
	wg.Wait()
	assert.Equal(t, len(ids), s.Len())
}
