package bolt

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
)

// StoreProof implements handler.ProofStorer. It is idempotent, as the service's at-least-once
// execution requires: storing a proof for a task that already has one replaces it (a re-run
// may produce a new receipt; either proves the same program) and succeeds.
func (s *Store) StoreProof(ctx context.Context, id paas.TaskID, proof handler.Proof) error {
	if err := s.ready(ctx); err != nil {
		return fmt.Errorf("bolt: store proof of task %s: %w", id, err)
	}
	if id.IsZero() {
		return errors.New("bolt: store proof: zero task id")
	}
	val := encodeProof(proof)
	if len(val) > bbolt.MaxValueSize {
		return fmt.Errorf("bolt: store proof of task %s: %d bytes exceed the limit of %d", id, len(val), bbolt.MaxValueSize)
	}
	err := s.update(func(tx *bbolt.Tx) error {
		b, err := openBuckets(tx)
		if err != nil {
			return err
		}
		return putProof(b.proofs, id, val)
	})
	if err != nil {
		return wrap(err, "bolt: store proof of task %s", id)
	}
	return nil
}

// DeleteProof deletes the proof stored for task id, if there is one; deleting a proof that is
// not there succeeds. Prune keeps the proofs of the tasks it deletes: this is how a caller that
// does not want them deletes them.
func (s *Store) DeleteProof(ctx context.Context, id paas.TaskID) error {
	if err := s.ready(ctx); err != nil {
		return fmt.Errorf("bolt: delete proof of task %s: %w", id, err)
	}
	err := s.update(func(tx *bbolt.Tx) error {
		b, err := openBuckets(tx)
		if err != nil {
			return err
		}
		return deleteProof(b.proofs, id)
	})
	if err != nil {
		return wrap(err, "bolt: delete proof of task %s", id)
	}
	return nil
}

// Proof returns the proof stored for task id, or an error wrapping ErrProofNotFound. An empty
// Receipt or PublicValues reads back as nil. A proof that cannot be read back gives a
// *CorruptRecordError.
func (s *Store) Proof(ctx context.Context, id paas.TaskID) (handler.Proof, error) {
	if err := s.ready(ctx); err != nil {
		return handler.Proof{}, fmt.Errorf("bolt: get proof of task %s: %w", id, err)
	}
	var p handler.Proof
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := openBuckets(tx)
		if err != nil {
			return err
		}
		v := b.proofs.Get(id[:])
		if v == nil {
			return ErrProofNotFound
		}
		p, err = decodeProof(id, v)
		return err
	})
	if err != nil {
		return handler.Proof{}, wrap(err, "bolt: get proof of task %s", id)
	}
	return p, nil
}
