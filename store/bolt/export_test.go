package bolt

import "github.com/zkpaas/paas"

// Exported for the tests of package bolt_test, which damage the file through bbolt directly.
var (
	BucketTasks  = bucketTasks
	BucketIndex  = bucketIndex
	BucketProofs = bucketProofs
	EncodeRecord = encodeRecord
	// EncodeIndexEntry returns the value of the index entry of a task.
	EncodeIndexEntry = encodeIndexEntry
)

// IndexEntry is an entry of the index bucket, decoded for the tests.
type IndexEntry struct {
	Seq      uint64
	Finished bool
	ID       paas.TaskID
	Key      paas.TaskKey
}

// DecodeIndexEntry decodes the entry k → v of the index bucket.
func DecodeIndexEntry(k, v []byte) (IndexEntry, error) {
	e, err := decodeIndexEntry(k, v)
	return IndexEntry{Seq: e.seq, Finished: e.finished, ID: e.id, Key: paas.TaskKey(e.key)}, err
}

// SetPruneBatch sets how many finished records one transaction of s.Prune examines, so that
// tests can make a prune of a few tasks take several transactions.
func SetPruneBatch(s *Store, n int) { s.pruneBatch = n }

// CheckStructure runs the structure check of Open on the file at path, alone.
func CheckStructure(path string) error {
	s, err := checkStructure(path)
	if err != nil {
		return err
	}
	return s.err(path)
}
