package bolt

import (
	"go.etcd.io/bbolt"

	"github.com/zkpaas/paas"
)

// The sequence of the proofs bucket, otherwise unused, holds a digest of the bucket's keys:
// trackedDigest, and the XOR of proofKeyHash of every key. A proof is found by its task id
// alone, the bucket key, which no checksum covers: a flipped bit in a key would make the proof
// read as not found, with nothing to tell it from a proof never stored. Open checks the digest
// against the keys (checkStructure), so that it fails instead; keeping it costs StoreProof
// and DeleteProof the lookup of the key they write, on the page they write anyway.
//
// A sequence of zero means no digest: a file written before it was kept, or a new bucket.
// Open computes it then.
const trackedDigest = 1 << 63

// proofKeyHash is the part of the digest of the proofs bucket that key contributes.
func proofKeyHash(key []byte) uint64 {
	h := uint64(14695981039346656037) // FNV-64a, without hash/fnv's allocation
	for _, c := range key {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return h &^ trackedDigest
}

// putProof stores the proof val of task id in the proofs bucket b, keeping its digest.
func putProof(b *bbolt.Bucket, id paas.TaskID, val []byte) error {
	if b.Get(id[:]) == nil {
		if err := b.SetSequence(b.Sequence() ^ proofKeyHash(id[:])); err != nil {
			return err
		}
	}
	return b.Put(id[:], val)
}

// deleteProof deletes the proof of task id from the proofs bucket b, keeping its digest.
func deleteProof(b *bbolt.Bucket, id paas.TaskID) error {
	if b.Get(id[:]) == nil {
		return nil
	}
	if err := b.SetSequence(b.Sequence() ^ proofKeyHash(id[:])); err != nil {
		return err
	}
	return b.Delete(id[:])
}

// trackProofs computes the digest of the proofs bucket b if it has none.
func trackProofs(b *bbolt.Bucket) error {
	if b.Sequence() != 0 {
		return nil
	}
	digest := uint64(trackedDigest)
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		digest ^= proofKeyHash(k)
	}
	return b.SetSequence(digest)
}
