package bolt

import (
	"bytes"
	"context"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/zkpaas/paas"
)

// Unfinished implements paas.TaskStore. It scans the index in Seq order, and reads the records
// of the entries not flagged finished only: a restart reads every task's small index entry,
// but not the record of a finished task. It fails with a *CorruptRecordError if an index entry
// is damaged or missing, or an unfinished task cannot be read back or disagrees with its entry,
// rather than leave that task out and so lose it. It trusts the flag of an entry flagged
// finished: to check it, it would have to read every finished record.
//
// The records share memory in blocks (see arena): the Key, Program, Checkpoint and other
// fields of variable length of neighbouring records lie in one allocation, freed once none of
// them is referenced. A caller may still modify or append to any of them, as to those of Get.
func (s *Store) Unfinished(ctx context.Context) ([]paas.TaskRecord, error) {
	if err := s.ready(ctx); err != nil {
		return nil, fmt.Errorf("bolt: unfinished tasks: %w", err)
	}
	var recs []paas.TaskRecord
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := openBuckets(tx)
		if err != nil {
			return err
		}
		recs, err = unfinishedTx(b)
		return err
	})
	if err != nil {
		return nil, wrap(err, "bolt: unfinished tasks")
	}
	return recs, nil
}

// unfinishedTx is Unfinished inside a read transaction.
func unfinishedTx(b buckets) ([]paas.TaskRecord, error) {
	// Sized once: a million records are 350 MB, which growing by append would copy over and
	// over.
	recs := make([]paas.TaskRecord, 0, countUnfinished(b.index))
	var a arena
	tasks := recordCursor{c: b.tasks.Cursor()}
	err := scanIndex(b, func(e indexEntry) error {
		if e.finished {
			return nil
		}
		v := tasks.get(e.id)
		if v == nil {
			return &CorruptRecordError{ID: e.id, Err: fmt.Errorf("index entry at seq %d names a task that is not stored", e.seq)}
		}
		recs = append(recs, paas.TaskRecord{})
		rec := &recs[len(recs)-1]
		if err := decodeRecordTo(rec, e.id, v, &a); err != nil {
			return err
		}
		return entryAgrees(e, rec)
	})
	if err != nil {
		return nil, err
	}
	return recs, nil
}

// countUnfinished counts the entries of the index not flagged finished, without checking
// them: the count only sizes the result of Unfinished, whose scan checks every entry, and
// finds no more unfinished ones than counted, since a damaged entry fails it.
func countUnfinished(index *bbolt.Bucket) int {
	n := 0
	c := index.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(v) > 1 && v[1]&indexFinished == 0 {
			n++
		}
	}
	return n
}

// recordCursor reads the records of the tasks bucket in the order of the index. Task ids are
// time-ordered, so the ids of the index entries, in Seq order, mostly come in key order too:
// the record after the one read last is then the one wanted, one step of the cursor away
// rather than a search from the root of the bucket, which a Get per task would make.
type recordCursor struct {
	c    *bbolt.Cursor
	last []byte // the key the cursor is at, nil before the first read or past the end
}

// get returns the record of id, as Bucket.Get does: nil if there is none.
func (rc *recordCursor) get(id paas.TaskID) []byte {
	var k, v []byte
	if rc.last != nil {
		k, v = rc.c.Next()
	}
	if !bytes.Equal(k, id[:]) {
		k, v = rc.c.Seek(id[:])
	}
	rc.last = k
	if !bytes.Equal(k, id[:]) {
		return nil
	}
	return v
}
