package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"go.etcd.io/bbolt"

	"github.com/zkpaas/paas"
)

// StoreProof implements paas.ProofStorer. It is idempotent, as the service's at-least-once
// execution requires: storing a proof for a task that already has one replaces it (a re-run
// may produce a new receipt; either proves the same program) and succeeds.
func (s *Store) StoreProof(ctx context.Context, id paas.TaskID, proof paas.Proof) error {
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

// Proof returns the proof stored for task id, or an error wrapping paas.ErrProofNotFound. An empty
// Receipt or PublicValues reads back as nil. A proof that cannot be read back gives a
// *CorruptRecordError.
func (s *Store) Proof(ctx context.Context, id paas.TaskID) (paas.Proof, error) {
	if err := s.ready(ctx); err != nil {
		return paas.Proof{}, fmt.Errorf("bolt: get proof of task %s: %w", id, err)
	}
	var p paas.Proof
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := openBuckets(tx)
		if err != nil {
			return err
		}
		v := b.proofs.Get(id[:])
		if v == nil {
			return paas.ErrProofNotFound
		}
		p, err = decodeProof(id, v)
		return err
	})
	if err != nil {
		return paas.Proof{}, wrap(err, "bolt: get proof of task %s", id)
	}
	return p, nil
}

// encodeProof returns the stored form of a proof, version 1: the version byte, then Backend,
// Receipt and PublicValues each as a uvarint length and the bytes, then a CRC-32C as in a
// record. An empty Receipt or PublicValues reads back as nil.
func encodeProof(p paas.Proof) []byte {
	b := make([]byte, 0, 1+3*binary.MaxVarintLen64+len(p.Backend)+len(p.Receipt)+len(p.PublicValues)+crcLen)
	b = append(b, proofV1)
	b = appendBytes(b, []byte(p.Backend))
	b = appendBytes(b, p.Receipt)
	b = appendBytes(b, p.PublicValues)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeProof parses a value of the proofs bucket stored under id. Every error is a
// *CorruptRecordError naming id. The proof shares no memory with b.
func decodeProof(id paas.TaskID, b []byte) (paas.Proof, error) {
	body, err := checkEnvelope(b, proofV1)
	if err != nil {
		return paas.Proof{}, &CorruptRecordError{ID: id, Err: fmt.Errorf("proof: %w", err)}
	}
	r := reader{b: body}
	p := paas.Proof{
		Backend:      paas.Backend(r.bytes()),
		Receipt:      r.bytesOrNil(),
		PublicValues: r.bytesOrNil(),
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return paas.Proof{}, &CorruptRecordError{ID: id, Err: fmt.Errorf("proof: %w", r.err)}
	}
	return p, nil
}
