package memory

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"github.com/zkpaas/paas"
)

// ProofStore is an in-memory paas.ProofStorer, for tests and examples: plug it into a
// handler.RemoteProofHandler as its Storer, then read the proofs back with Proof. Like Store,
// it forgets everything when the process exits.
//
// It is safe for concurrent use. Proofs are copied on the way in and on the way out, so callers
// may keep and mutate the byte slices they pass and receive. The zero ProofStore is empty and
// ready to use.
type ProofStore struct {
	mu     sync.Mutex
	proofs map[paas.TaskID]paas.Proof
}

var _ paas.ProofStorer = (*ProofStore)(nil)

// NewProofStore returns an empty ProofStore.
func NewProofStore() *ProofStore {
	return &ProofStore{proofs: make(map[paas.TaskID]paas.Proof)}
}

// StoreProof implements paas.ProofStorer. It is idempotent, as the service's at-least-once
// execution requires: storing a proof for an id that already has one replaces it and succeeds.
// It returns ctx.Err() without storing anything if ctx has ended.
func (s *ProofStore) StoreProof(ctx context.Context, id paas.TaskID, proof paas.Proof) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proofs == nil {
		s.proofs = make(map[paas.TaskID]paas.Proof)
	}
	s.proofs[id] = cloneProof(proof)
	return nil
}

// Proof returns a copy of the proof stored for task id, or an error wrapping
// paas.ErrProofNotFound.
// It returns ctx.Err() if ctx has ended.
func (s *ProofStore) Proof(ctx context.Context, id paas.TaskID) (paas.Proof, error) {
	if err := ctx.Err(); err != nil {
		return paas.Proof{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.proofs[id]
	if !ok {
		return paas.Proof{}, fmt.Errorf("memory: get proof of task %s: %w", id, paas.ErrProofNotFound)
	}
	return cloneProof(p), nil
}

// Len returns the number of proofs stored.
func (s *ProofStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.proofs)
}

// cloneProof returns p with its byte slices copied. bytes.Clone keeps nil as nil, so a proof
// without a receipt reads back exactly as it was stored.
func cloneProof(p paas.Proof) paas.Proof {
	p.Receipt = bytes.Clone(p.Receipt)
	p.PublicValues = bytes.Clone(p.PublicValues)
	return p
}
