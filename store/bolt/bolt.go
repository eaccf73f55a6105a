package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
)

var (
	// ErrLocked is wrapped by the error of Open when another process, or another open Store
	// in this one, holds the file. Two writers would corrupt it, so bbolt locks it exclusively.
	ErrLocked = errors.New("bolt: store file is in use by another process (or another open Store)")
	// ErrProofNotFound is wrapped by the error of Store.Proof for a task that has no proof.
	// It wraps paas.ErrProofNotFound.
	ErrProofNotFound = fmt.Errorf("bolt: %w", paas.ErrProofNotFound)
)

const (
	// DefaultLockTimeout is the Options.LockTimeout used when it is zero.
	DefaultLockTimeout = time.Second
	// DefaultFileMode is the Options.FileMode used when it is zero: the file holds programs
	// and proofs, so only its owner may read it.
	DefaultFileMode os.FileMode = 0o600
)

// Options configure Open. The zero Options, like a nil *Options, give the defaults.
type Options struct {
	// LockTimeout is how long Open waits for the file lock held by another process before it
	// fails with ErrLocked. Zero means DefaultLockTimeout. Waiting short is the point: a node
	// started twice on one file should fail at once with a clear error, not hang.
	LockTimeout time.Duration
	// NoSync skips the fsync at the end of every commit. It is for tests only: with it, a
	// method may return before its write is on disk, and a crash of the machine (not just of
	// the process) can lose acknowledged tasks and proofs or leave the file corrupt.
	NoSync bool
	// FileMode is the permission of the file if Open creates it. Zero means DefaultFileMode.
	FileMode os.FileMode
}

// Buckets of the file. Task ids are stored as their 16 bytes; they are time-ordered (UUIDv7),
// so new tasks are appended at the end of the tasks bucket rather than scattered through it.
//
// The index holds one small entry for every task, under its Seq: whether the task is finished,
// its id and its TaskKey (see encodeIndexEntry). An insert appends one entry, at the end of the
// bucket; an update rewrites it only when its task moves between unfinished and final, and
// leaves it alone otherwise; Prune deletes it with its task. An insert takes its Seq in the
// transaction that writes the entry, and Prune adds the entries it deletes to the sequence of
// the index bucket (otherwise unused) in the transaction that deletes them, so the entries
// are always those of Seq 1 to the sequence of the tasks bucket, but for as many as the
// sequence of the index bucket counts. Open and Unfinished check it (see scanIndex), so that a
// lost entry is noticed even where Prune has left gaps: a lost entry leaves one gap more than
// Prune counted.
//
// The count of pruned entries is what keeps that check sound with gaps: without it, a gap
// could be a pruned task or a lost entry, and a lost entry of an unfinished task would lose
// the task. It cannot tell which Seq lost its entry, only that one did, and it cannot catch a
// lost entry and a wrong count that cancel out; only a bug of the store, not a flipped bit,
// which the checksums catch, could write such a count.
//
// The index serves three readers, which each scan it in Seq order:
//   - Open, which rebuilds from it the map from TaskKey to id that the Store keeps in memory.
//     There is no bucket from key to id: keys are digests, so every insert would dirty a
//     different page of such a bucket, and a batch of 64 inserts would write 64 pages. The file
//     lock makes the Store the file's only writer, so the map cannot go stale.
//   - Unfinished, which reads the records of the entries not flagged finished and skips the
//     others. A separate bucket of the unfinished tasks alone would spare it the finished
//     entries, but would cost every insert a third Put. One bucket costs one Put less per
//     insert, in exchange for a scan of small entries (about a hundred bytes a task) at start,
//     which Open does anyway; it also trusts the flag of a finished entry, since checking it
//     would take reading every finished record.
//   - Prune, which skips the entries flagged unfinished without reading their records, and
//     reads the record of each entry flagged finished for its UpdatedAt, checking it against
//     the entry before it deletes anything. UpdatedAt is not kept in the entry: it changes with
//     every update, so the entry would have to be rewritten by every update, not only by the
//     few that finish a task, and Prune, which deletes for good, would then act on the entry
//     alone. Reading the finished records costs Prune time proportional to the finished tasks
//     kept, which Prune itself keeps bounded.
var (
	bucketTasks  = []byte("tasks")  // id → record; its sequence is the last Seq given
	bucketIndex  = []byte("index")  // Seq, 8 bytes big-endian → index entry, for every task; its sequence counts the entries pruned
	bucketProofs = []byte("proofs") // id → proof; its sequence is a digest of its keys (see trackedDigest)
	// dependency id ‖ dependent id → nothing, for every unfinished task and each of its
	// dependencies, so that Prune keeps the tasks that unfinished tasks depend on without
	// reading the records of the unfinished tasks.
	bucketDependents = []byte("dependents")
)

// Store is a paas.TaskStore, paas.BatchStore and handler.ProofStorer kept in one bbolt file.
// It is safe for concurrent use; writes are serialised by bbolt, reads run in parallel.
// Records and proofs are copied on the way in and out, so callers may keep and mutate them.
type Store struct {
	db     *bbolt.DB
	path   string
	closed atomic.Bool

	mu   sync.Mutex                   // held across every transaction that inserts or prunes
	keys map[paas.TaskKey]paas.TaskID // guarded by mu: the key of every readable task

	pruneBatch int // how many finished records one transaction of Prune examines at most
}

var (
	_ paas.BatchStore     = (*Store)(nil)
	_ handler.ProofStorer = (*Store)(nil)
)

// Open opens the store in the file at path, creating the file if it does not exist (but not
// its directory). It fails with an error wrapping ErrLocked if another process holds the file
// for longer than opts.LockTimeout, and with a *DamagedFileError if the file is damaged: Open
// checks its whole structure before bbolt reads it, which costs a read of the file. A nil
// opts means the defaults.
func Open(path string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.FileMode == 0 {
		o.FileMode = DefaultFileMode
	}

	db, keys, err := openFile(path, o)
	if err != nil {
		return nil, err
	}
	return &Store{db: db, path: path, keys: keys, pruneBatch: defaultPruneBatch}, nil
}

// loadKeys reads the key of every task from the index. The keys are kept there, apart from
// the records, so that the key of a task whose record is damaged is still known: a second
// Insert of it then reports the damage instead of creating a duplicate task. A damaged or
// missing index entry fails Open for the same reason.
func loadKeys(db *bbolt.DB) (map[paas.TaskKey]paas.TaskID, error) {
	var keys map[paas.TaskKey]paas.TaskID
	err := db.View(func(tx *bbolt.Tx) error {
		b, err := openBuckets(tx)
		if err != nil {
			return err
		}
		// One key per Seq given and not pruned, so size the map once; the cap bounds what a
		// damaged sequence could make it allocate before the scan reports the damage.
		var size uint64
		if last, pruned := b.tasks.Sequence(), b.index.Sequence(); pruned < last {
			size = last - pruned
		}
		keys = make(map[paas.TaskKey]paas.TaskID, min(size, 1<<20))
		return scanIndex(b, func(e indexEntry) error {
			keys[paas.TaskKey(e.key)] = e.id
			return nil
		})
	})
	return keys, err
}

// scanIndex calls fn for every entry of the index, in Seq order, and returns the first error of
// fn. It fails with a *CorruptRecordError at a damaged entry, and if the entries are not those
// of the Seqs from 1 to the last given, but for exactly as many as Prune counts (see the
// bucket comment). It cannot tell which Seqs Prune left without an entry, so where there are
// gaps it cannot name the Seq of a lost entry, only that there is one.
func scanIndex(b buckets, fn func(e indexEntry) error) error {
	last, pruned := b.tasks.Sequence(), b.index.Sequence()
	if pruned > last {
		return &CorruptRecordError{Err: fmt.Errorf("the index counts %d entries pruned, more than the %d seqs given", pruned, last)}
	}
	// seen counts the entries read so far, and prev is the Seq of the last of them. Every Seq
	// below an entry that has none was pruned, or its entry is lost.
	var seen, prev uint64
	c := b.index.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		e, err := decodeIndexEntry(k, v)
		if err != nil {
			return err
		}
		switch {
		case e.seq > last:
			return &CorruptRecordError{ID: e.id, Err: fmt.Errorf("index entry at seq %d, beyond the last seq given, %d", e.seq, last)}
		case e.seq == 0:
			return &CorruptRecordError{ID: e.id, Err: fmt.Errorf("index entry at seq %d, which is never given", e.seq)}
		}
		// Keys come in order, so the seen entries are all below e.seq.
		if gaps := e.seq - 1 - seen; gaps > pruned {
			return lostEntry(prev, e.seq-1, last, gaps, pruned)
		}
		if err := fn(e); err != nil {
			return err
		}
		seen++
		prev = e.seq
	}
	switch gaps := last - seen; {
	case gaps > pruned:
		return lostEntry(prev, last, last, gaps, pruned)
	case gaps < pruned:
		return &CorruptRecordError{Err: fmt.Errorf(
			"the index counts %d entries pruned, but only %d of the %d seqs given lack an entry", pruned, gaps, last)}
	}
	return nil
}

// lostEntry reports that gaps of the Seqs up to upTo lack an index entry, more than the pruned
// ones; if none was pruned, it names the first of them, the one after prev. last is the last
// Seq given.
func lostEntry(prev, upTo, last, gaps, pruned uint64) error {
	if pruned == 0 {
		return &CorruptRecordError{Err: fmt.Errorf("no index entry at seq %d, though seqs up to %d were given", prev+1, last)}
	}
	return &CorruptRecordError{Err: fmt.Errorf(
		"index entries lost: %d of the seqs up to %d lack an entry, but only %d were pruned", gaps, upTo, pruned)}
}

// txKeys is the key index as a write transaction sees it: the committed keys, and those the
// transaction has added, which join the index only if it commits.
type txKeys struct {
	committed map[paas.TaskKey]paas.TaskID
	added     map[paas.TaskKey]paas.TaskID
}

func (k *txKeys) lookup(key paas.TaskKey) (paas.TaskID, bool) {
	if id, ok := k.added[key]; ok {
		return id, true
	}
	id, ok := k.committed[key]
	return id, ok
}

func (k *txKeys) add(key paas.TaskKey, id paas.TaskID) {
	if k.added == nil {
		k.added = make(map[paas.TaskKey]paas.TaskID)
	}
	k.added[key] = id
}

// inserting runs fn in a write transaction that may insert, and adds the keys it inserted to
// the index once it has committed.
func (s *Store) inserting(fn func(tx *bbolt.Tx, keys *txKeys) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := &txKeys{committed: s.keys}
	if err := s.update(func(tx *bbolt.Tx) error { return fn(tx, keys) }); err != nil {
		return err
	}
	for k, id := range keys.added {
		s.keys[k] = id
	}
	return nil
}

// Path returns the path of the store's file, as given to Open.
func (s *Store) Path() string { return s.path }

// Close closes the file and releases its lock. Every later call of a method fails with an error
// wrapping paas.ErrStoreClosed. Close waits for the transactions in flight to end; calling it
// again does nothing and returns nil at once.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("bolt: close %s: %w", s.path, err)
	}
	return nil
}

// Insert implements paas.TaskStore. It returns an error if a task with rec.ID but another key
// is already stored, since storing rec would orphan that task's key, and for a record it could
// not read back: a zero ID, an empty Key, an invalid State, times outside years 1 to 9999.
func (s *Store) Insert(ctx context.Context, rec paas.TaskRecord) (paas.TaskRecord, error) {
	if err := s.ready(ctx); err != nil {
		return paas.TaskRecord{}, fmt.Errorf("bolt: insert task %s: %w", rec.ID, err)
	}
	var out paas.TaskRecord
	err := s.inserting(func(tx *bbolt.Tx, keys *txKeys) error {
		var err error
		out, err = insertTx(tx, keys, rec)
		return err
	})
	if err != nil {
		return paas.TaskRecord{}, wrap(err, "bolt: insert task %s", rec.ID)
	}
	return out, nil
}

// Update implements paas.TaskStore. The stored Seq, Key and CreatedAt are kept whatever rec holds.
func (s *Store) Update(ctx context.Context, rec paas.TaskRecord) error {
	if err := s.ready(ctx); err != nil {
		return fmt.Errorf("bolt: update task %s: %w", rec.ID, err)
	}
	err := s.update(func(tx *bbolt.Tx) error { return updateTx(tx, rec) })
	if err != nil {
		return wrap(err, "bolt: update task %s", rec.ID)
	}
	return nil
}

// WriteBatch implements paas.BatchStore: one transaction, one sync to disk. A write that fails
// on its own (the update of an unknown task, an invalid record, a duplicate id) fails alone. If
// ctx has ended, or the transaction fails (a full disk, a failed sync, a closed store), every
// write fails with that error and none is applied. The Record of an update's result is left zero.
func (s *Store) WriteBatch(ctx context.Context, writes []paas.Write) []paas.WriteResult {
	results := make([]paas.WriteResult, len(writes))
	failAll := func(err error) []paas.WriteResult {
		for i := range results {
			results[i] = paas.WriteResult{Err: err}
		}
		return results
	}
	if err := s.ready(ctx); err != nil {
		return failAll(fmt.Errorf("bolt: write batch: %w", err))
	}
	if len(writes) == 0 {
		return results
	}
	err := s.inserting(func(tx *bbolt.Tx, keys *txKeys) error {
		for i, w := range writes {
			var (
				rec paas.TaskRecord
				err error
				op  = "update"
			)
			if w.Insert {
				op = "insert"
				rec, err = insertTx(tx, keys, w.Record)
			} else {
				err = updateTx(tx, w.Record)
			}
			if ab := (*txAbort)(nil); errors.As(err, &ab) {
				return ab.err // the transaction is broken: roll back everything
			}
			if err != nil {
				err = damaged(s.path, wrap(err, "bolt: %s task %s", op, w.Record.ID))
			}
			results[i] = paas.WriteResult{Record: rec, Err: err}
		}
		return nil
	})
	if err != nil {
		return failAll(wrap(err, "bolt: write batch of %d", len(writes)))
	}
	return results
}

// Get implements paas.TaskStore. A record that cannot be read back gives a *CorruptRecordError.
func (s *Store) Get(ctx context.Context, id paas.TaskID) (paas.TaskRecord, error) {
	if err := s.ready(ctx); err != nil {
		return paas.TaskRecord{}, fmt.Errorf("bolt: get task %s: %w", id, err)
	}
	var rec paas.TaskRecord
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := openBuckets(tx)
		if err != nil {
			return err
		}
		rec, err = getTx(b, id)
		return err
	})
	if err != nil {
		return paas.TaskRecord{}, wrap(err, "bolt: get task %s", id)
	}
	return rec, nil
}

// GetByKey implements paas.TaskStore. It finds the task in the map of keys that the Store
// keeps in memory, then reads its record as Get does.
func (s *Store) GetByKey(ctx context.Context, key paas.TaskKey) (paas.TaskRecord, error) {
	s.mu.Lock()
	id, ok := s.keys[key]
	s.mu.Unlock()
	if !ok {
		if err := s.ready(ctx); err != nil {
			return paas.TaskRecord{}, fmt.Errorf("bolt: get task of key %s: %w", key, err)
		}
		return paas.TaskRecord{}, fmt.Errorf("bolt: get task of key %s: %w", key, paas.ErrTaskNotFound)
	}
	rec, err := s.Get(ctx, id)
	if errors.Is(err, paas.ErrTaskNotFound) {
		// Pruned since the map was read: the key is free again.
		return paas.TaskRecord{}, fmt.Errorf("bolt: get task of key %s: %w", key, paas.ErrTaskNotFound)
	}
	return rec, err
}

// Unfinished implements paas.TaskStore. It scans the index in Seq order, and reads the records
// of the entries not flagged finished only: a restart reads every task's small index entry,
// but not the record of a finished task. It fails with a *CorruptRecordError if an index entry
// is damaged or missing, or an unfinished task cannot be read back or disagrees with its entry,
// rather than leave that task out and so lose it. It trusts the flag of an entry flagged
// finished: to check it, it would have to read every finished record.
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
		return scanIndex(b, func(e indexEntry) error {
			if e.finished {
				return nil
			}
			rec, err := getTx(b, e.id)
			if errors.Is(err, paas.ErrTaskNotFound) {
				return &CorruptRecordError{ID: e.id, Err: fmt.Errorf("index entry at seq %d names a task that is not stored", e.seq)}
			}
			if err != nil {
				return err
			}
			if err := entryAgrees(e, rec); err != nil {
				return err
			}
			recs = append(recs, rec)
			return nil
		})
	})
	if err != nil {
		return nil, wrap(err, "bolt: unfinished tasks")
	}
	return recs, nil
}

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
			if err := entryAgrees(e, rec); err != nil {
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

// ready returns why a method must not start: an ended ctx first, then a closed store. bbolt
// reports a closed file too, but only with its own error, and only once a transaction begins.
func (s *Store) ready(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return paas.ErrStoreClosed
	}
	return nil
}

// wrap adds context to err, turns bbolt's closed-file error into paas.ErrStoreClosed, and
// leaves a *CorruptRecordError as it is, since it names its task already.
func wrap(err error, format string, args ...any) error {
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		err = paas.ErrStoreClosed
	}
	if ab := (*txAbort)(nil); errors.As(err, &ab) {
		err = ab.err
	}
	if corrupt := (*CorruptRecordError)(nil); errors.As(err, &corrupt) {
		return err
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// txAbort marks an error of bbolt itself inside a write transaction. It fails the whole
// transaction; the other errors of insertTx and updateTx fail one write of a batch.
type txAbort struct{ err error }

func (e *txAbort) Error() string { return e.err.Error() }
func (e *txAbort) Unwrap() error { return e.err }

func abort(err error) error {
	if err == nil {
		return nil
	}
	return &txAbort{err: err}
}

type buckets struct {
	tasks, index, proofs, dependents *bbolt.Bucket
}

func openBuckets(tx *bbolt.Tx) (buckets, error) {
	b := buckets{
		tasks:      tx.Bucket(bucketTasks),
		index:      tx.Bucket(bucketIndex),
		proofs:     tx.Bucket(bucketProofs),
		dependents: tx.Bucket(bucketDependents),
	}
	if b.tasks == nil || b.index == nil || b.proofs == nil || b.dependents == nil {
		// Open creates them all, so the file has been tampered with.
		return b, abort(errors.New("bolt: a bucket of the store is missing"))
	}
	// New entries go at the end of these buckets (Seq and time-ordered ids grow), so full
	// pages are never split again: fill them up rather than leave bbolt's default half.
	b.tasks.FillPercent = appendFill
	b.index.FillPercent = appendFill
	return b, nil
}

// appendFill is the fill of pages in buckets written in key order. Records of the tasks bucket
// are rewritten in place as tasks move and may grow a little (a longer error), so leave some room.
const appendFill = 0.9

// seqKey returns the key of the index entry of Seq seq.
func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// entryAgrees checks that the index entry e says of its task what rec, the task's record, does.
func entryAgrees(e indexEntry, rec paas.TaskRecord) error {
	if rec.ID == e.id && rec.Seq == e.seq && rec.State.Final() == e.finished && string(rec.Key) == string(e.key) {
		return nil
	}
	flag := "unfinished"
	if e.finished {
		flag = "finished"
	}
	return &CorruptRecordError{ID: rec.ID, Err: fmt.Errorf(
		"index entry at seq %d (task %s, %s, key %q) disagrees with the record (seq %d, %s, key %q)",
		e.seq, e.id, flag, e.key, rec.Seq, rec.State, rec.Key)}
}

// getTx returns the record of id, or an error wrapping paas.ErrTaskNotFound.
func getTx(b buckets, id paas.TaskID) (paas.TaskRecord, error) {
	v := b.tasks.Get(id[:])
	if v == nil {
		return paas.TaskRecord{}, paas.ErrTaskNotFound
	}
	return decodeRecord(id, v)
}

// insertTx is Insert inside a write transaction. It checks everything that could fail alone
// before it changes anything, so that a write failing alone leaves nothing half done in a batch.
func insertTx(tx *bbolt.Tx, keys *txKeys, rec paas.TaskRecord) (paas.TaskRecord, error) {
	b, err := openBuckets(tx)
	if err != nil {
		return paas.TaskRecord{}, err
	}
	switch {
	case rec.Key == "":
		return paas.TaskRecord{}, errors.New("empty task key")
	case len(rec.Key) > bbolt.MaxKeySize:
		return paas.TaskRecord{}, fmt.Errorf("task key of %d bytes exceeds the limit of %d", len(rec.Key), bbolt.MaxKeySize)
	}
	if id, ok := keys.lookup(rec.Key); ok {
		existing, err := getTx(b, id)
		if errors.Is(err, paas.ErrTaskNotFound) {
			return paas.TaskRecord{}, &CorruptRecordError{ID: id, Err: fmt.Errorf("key index entry for key %q names a task that is not stored", rec.Key)}
		}
		return existing, err
	}
	if b.tasks.Get(rec.ID[:]) != nil {
		return paas.TaskRecord{}, errors.New("id already stored under another key")
	}
	rec.Seq = 1 // a placeholder: validate before taking a real Seq
	if err := validateRecord(rec); err != nil {
		return paas.TaskRecord{}, fmt.Errorf("invalid record: %w", err)
	}
	if n := maxRecordLen(rec); n > bbolt.MaxValueSize {
		return paas.TaskRecord{}, fmt.Errorf("record of up to %d bytes exceeds the limit of %d", n, bbolt.MaxValueSize)
	}
	if rec.Seq, err = b.tasks.NextSequence(); err != nil {
		return paas.TaskRecord{}, abort(err)
	}
	val, err := encodeRecord(rec)
	if err != nil {
		return paas.TaskRecord{}, abort(err) // validated above, so a bug
	}
	if err := b.tasks.Put(rec.ID[:], val); err != nil {
		return paas.TaskRecord{}, abort(err)
	}
	if err := b.index.Put(seqKey(rec.Seq), encodeIndexEntry(rec.State.Final(), rec.ID, rec.Key)); err != nil {
		return paas.TaskRecord{}, abort(err)
	}
	if err := setDependents(b, paas.TaskRecord{}, rec); err != nil {
		return paas.TaskRecord{}, abort(err)
	}
	keys.add(rec.Key, rec.ID)
	// A copy, so that the caller's Program is not handed back as the store's.
	return rec.Clone(), nil
}

// updateTx is Update inside a write transaction. Like insertTx, it fails alone only before it
// changes anything. It rewrites the task's index entry only if the task moves between unfinished
// and final, and then first checks that the entry agrees with the record it replaces.
func updateTx(tx *bbolt.Tx, rec paas.TaskRecord) error {
	b, err := openBuckets(tx)
	if err != nil {
		return err
	}
	old, err := getTx(b, rec.ID)
	if err != nil {
		return err
	}
	if rec.Version != 0 && old.Version != rec.Version-1 {
		return fmt.Errorf("version %d, but the stored version is %d: %w", rec.Version, old.Version, paas.ErrConflict)
	}
	rec.Seq, rec.Key, rec.CreatedAt = old.Seq, old.Key, old.CreatedAt
	val, err := encodeRecord(rec)
	if err != nil {
		return fmt.Errorf("invalid record: %w", err)
	}
	if len(val) > bbolt.MaxValueSize {
		return fmt.Errorf("record of %d bytes exceeds the limit of %d", len(val), bbolt.MaxValueSize)
	}
	moves := old.State.Final() != rec.State.Final()
	if moves {
		v := b.index.Get(seqKey(old.Seq))
		if v == nil {
			return &CorruptRecordError{ID: old.ID, Err: fmt.Errorf("no index entry at seq %d, the task's", old.Seq)}
		}
		e, err := decodeIndexEntry(seqKey(old.Seq), v)
		if corrupt := (*CorruptRecordError)(nil); errors.As(err, &corrupt) && corrupt.ID.IsZero() {
			corrupt.ID = old.ID // the entry is too damaged to name its task, but it is this one's
		}
		if err != nil {
			return err
		}
		if err := entryAgrees(e, old); err != nil {
			return err
		}
	}
	if err := b.tasks.Put(rec.ID[:], val); err != nil {
		return abort(err)
	}
	if err := setDependents(b, old, rec); err != nil {
		return abort(err)
	}
	if moves {
		return abort(b.index.Put(seqKey(rec.Seq), encodeIndexEntry(rec.State.Final(), rec.ID, rec.Key)))
	}
	return nil
}
