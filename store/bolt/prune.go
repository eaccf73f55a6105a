package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/zkpaas/paas"
)

// defaultPruneBatch is how many finished records one transaction of Prune examines at most.
// It bounds how long Prune holds the file's single writer lock, and the memory of its
// transaction, at a few milliseconds of work: a prune of a million tasks commits some 250
// times, and the service's writes get their turns in between.
const defaultPruneBatch = 4096

// Prune implements paas.TaskStore. It deletes the record, the index entry and the key of each
// task in a final state whose UpdatedAt is before the given time, so that the task is
// forgotten: Get no longer finds it, and its program submitted again becomes a new task, with
// a new id and a greater Seq. It never deletes an unfinished task, nor a finished one that an
// unfinished task depends on (the dependents bucket tells which, without reading the records
// of unfinished tasks): such a task is kept until its dependents have finished.
//
// Proofs are not deleted: they are the product, which whoever submitted the tasks may still
// come to read, and a proof outlives its task harmlessly. A caller that wants the proofs of
// pruned tasks gone deletes them with DeleteProof.
//
// Prune finds the tasks through the index, in Seq order, skips by their flag the entries of
// unfinished tasks without reading their records, and reads the record of every finished one
// for its UpdatedAt. Before it deletes a task it checks that the record agrees with its entry
// and is final: a deletion cannot be undone, so it trusts no flag alone. A finished record it
// cannot read, or that disagrees with its entry, fails Prune with a *CorruptRecordError naming
// the task, and the task is kept.
//
// Prune works in transactions of a bounded size (a few thousand finished records each), each
// one committed before the next begins, so that a large prune neither holds up the service's
// writes for long nor builds one huge transaction. If it fails, or ctx ends, between two of
// them, it returns the number of tasks deleted by those committed, with the error; they stay
// deleted, and calling Prune again finishes the work. A cancelled ctx at the call deletes
// nothing. Tasks inserted while Prune runs are left for the next Prune.
func (s *Store) Prune(ctx context.Context, before time.Time) (int, error) {
	if err := s.ready(ctx); err != nil {
		return 0, fmt.Errorf("bolt: prune: %w", err)
	}
	total := 0
	pass := prunePass{next: 1}
	for {
		var err error
		pass, err = s.pruneOnce(pass.next, pass.end, before)
		total += len(pass.deleted)
		if err != nil {
			return total, wrapPrune(err, total)
		}
		if pass.done {
			return total, nil
		}
		if err := s.ready(ctx); err != nil {
			return total, wrapPrune(err, total)
		}
	}
}

// wrapPrune adds to an error of Prune how many tasks it deleted before the error.
func wrapPrune(err error, deleted int) error {
	if deleted == 0 {
		return wrap(err, "bolt: prune")
	}
	return wrap(err, "bolt: prune, after deleting %d tasks", deleted)
}

// prunePass is what one transaction of Prune did, and where the next one starts.
type prunePass struct {
	deleted []prunedTask
	next    uint64 // the first Seq the next pass examines
	end     uint64 // the last Seq given when the prune began: the last Seq any pass examines
	done    bool   // whether every Seq up to end has been examined
}

// errNothingPruned rolls back a transaction of Prune that deleted nothing.
var errNothingPruned = errors.New("bolt: nothing pruned")

type prunedTask struct {
	seq uint64
	id  paas.TaskID
	key paas.TaskKey
}

// pruneOnce runs one transaction of Prune, from Seq from, and forgets the keys of the tasks it
// deleted once it has committed. end is as in prunePass, or zero in the first pass, which sets
// it. It holds mu, as an insert does, so that no insert finds in the key map a task that the
// transaction has deleted.
func (s *Store) pruneOnce(from, end uint64, before time.Time) (prunePass, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var p prunePass
	err := s.update(func(tx *bbolt.Tx) error {
		var err error
		p, err = pruneTx(tx, from, end, before, s.pruneBatch)
		if err == nil && len(p.deleted) == 0 {
			return errNothingPruned // roll back: a commit would only cost a sync
		}
		return err
	})
	if err != nil && !errors.Is(err, errNothingPruned) {
		return prunePass{}, err
	}
	for _, t := range p.deleted {
		if s.keys[t.key] == t.id {
			delete(s.keys, t.key)
		}
	}
	return p, nil
}

// pruneTx is one pass of Prune inside a write transaction: it examines the index from Seq from
// up to Seq end (the last Seq given, if end is zero), reads the records of at most limit
// finished tasks, and deletes those last updated before before. It collects them first and
// deletes them after, since a bbolt cursor must not walk a bucket that changes under it.
func pruneTx(tx *bbolt.Tx, from, end uint64, before time.Time, limit int) (prunePass, error) {
	b, err := openBuckets(tx)
	if err != nil {
		return prunePass{}, err
	}
	p := prunePass{next: from, end: end}
	if p.end == 0 {
		p.end = b.tasks.Sequence()
	}
	p.done = true
	examined := 0
	c := b.index.Cursor()
	for k, v := c.Seek(seqKey(from)); k != nil; k, v = c.Next() {
		e, err := decodeIndexEntry(k, v)
		if err != nil {
			return prunePass{}, err
		}
		if e.seq > p.end {
			break // inserted since the prune began: unfinished, or finished just now
		}
		if e.finished {
			if examined >= max(limit, 1) {
				p.next, p.done = e.seq, false // the next pass starts at e
				break
			}
			examined++
			rec, err := getTx(b, e.id)
			if errors.Is(err, paas.ErrTaskNotFound) {
				return prunePass{}, &CorruptRecordError{ID: e.id, Err: fmt.Errorf("index entry at seq %d names a task that is not stored", e.seq)}
			}
			if err != nil {
				return prunePass{}, err
			}
			if err := entryAgrees(e, &rec); err != nil {
				return prunePass{}, err
			}
			if rec.UpdatedAt.Before(before) {
				p.deleted = append(p.deleted, prunedTask{seq: e.seq, id: e.id, key: rec.Key})
			}
		}
		p.next = e.seq + 1
	}
	p.deleted = keepDependencies(b, p.deleted)
	for _, t := range p.deleted {
		if err := b.tasks.Delete(t.id[:]); err != nil {
			return prunePass{}, err
		}
		if err := b.index.Delete(seqKey(t.seq)); err != nil {
			return prunePass{}, err
		}
	}
	if len(p.deleted) > 0 {
		if err := b.index.SetSequence(b.index.Sequence() + uint64(len(p.deleted))); err != nil {
			return prunePass{}, err
		}
	}
	return p, nil
}

// keepDependencies returns the tasks of doomed on which no unfinished task depends, as the
// dependents bucket tells.
func keepDependencies(b buckets, doomed []prunedTask) []prunedTask {
	c := b.dependents.Cursor()
	return slices.DeleteFunc(doomed, func(t prunedTask) bool {
		k, _ := c.Seek(t.id[:])
		return k != nil && bytes.HasPrefix(k, t.id[:])
	})
}
