package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/zkpaas/paas"
)

// StoreProof implements paas.ProofStorer. It is idempotent, as the service's at-least-once
// execution requires: storing a proof for a task that already has one replaces it and
// succeeds.
func (s *Store) StoreProof(ctx context.Context, id paas.TaskID, proof paas.Proof) error {
	if err := s.ready(ctx); err != nil {
		return fmt.Errorf("postgres: store proof of task %s: %w", id, err)
	}
	if id.IsZero() {
		return errors.New("postgres: store proof: zero task id")
	}
	if _, err := s.pool.Exec(ctx, s.q.storeProof, uuidOf(id), string(proof.Backend), proof.Receipt, proof.PublicValues); err != nil {
		return fmt.Errorf("postgres: store proof of task %s: %w", id, err)
	}
	return nil
}

// Proof implements paas.ProofReader: the proof stored for task id, or an error wrapping
// paas.ErrProofNotFound. An empty Receipt or PublicValues reads back as nil.
func (s *Store) Proof(ctx context.Context, id paas.TaskID) (paas.Proof, error) {
	if err := s.ready(ctx); err != nil {
		return paas.Proof{}, fmt.Errorf("postgres: get proof of task %s: %w", id, err)
	}
	var p paas.Proof
	var backend string
	err := s.pool.QueryRow(ctx, s.q.proof, uuidOf(id)).Scan(&backend, &p.Receipt, &p.PublicValues)
	if errors.Is(err, pgx.ErrNoRows) {
		return paas.Proof{}, fmt.Errorf("postgres: get proof of task %s: %w", id, paas.ErrProofNotFound)
	}
	if err != nil {
		return paas.Proof{}, fmt.Errorf("postgres: get proof of task %s: %w", id, err)
	}
	p.Backend = paas.Backend(backend)
	if len(p.Receipt) == 0 {
		p.Receipt = nil
	}
	if len(p.PublicValues) == 0 {
		p.PublicValues = nil
	}
	return p, nil
}

// DeleteProof deletes the proof stored for task id, if there is one; deleting a proof that is
// not there succeeds. Prune keeps the proofs of the tasks it deletes: this is how a caller
// that does not want them deletes them.
func (s *Store) DeleteProof(ctx context.Context, id paas.TaskID) error {
	if err := s.ready(ctx); err != nil {
		return fmt.Errorf("postgres: delete proof of task %s: %w", id, err)
	}
	if _, err := s.pool.Exec(ctx, s.q.deleteProof, uuidOf(id)); err != nil {
		return fmt.Errorf("postgres: delete proof of task %s: %w", id, err)
	}
	return nil
}
