package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
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
	ErrProofNotFound = errors.New("bolt: proof not found")
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
// There is no bucket from TaskKey to id: keys are digests, so every insert would dirty a
// different page of such a bucket, and a batch of 64 inserts would write 64 pages. The keys are
// appended to a log in Seq order instead, and the Store keeps the index from key to id in
// memory, read from the log at Open. The file lock makes the Store the file's only writer, so
// the index cannot go stale.
var (
	bucketTasks      = []byte("tasks")      // id → record; its sequence is the last Seq given
	bucketUnfinished = []byte("unfinished") // Seq, 8 bytes big-endian → id, for tasks not final
	bucketKeyLog     = []byte("keylog")     // Seq, 8 bytes big-endian → id ‖ TaskKey, for every task
	bucketProofs     = []byte("proofs")     // id → proof
)

// Store is a paas.TaskStore, paas.BatchStore and handler.ProofStorer kept in one bbolt file.
// It is safe for concurrent use; writes are serialised by bbolt, reads run in parallel.
// Records and proofs are copied on the way in and out, so callers may keep and mutate them.
type Store struct {
	db     *bbolt.DB
	path   string
	closed atomic.Bool

	mu   sync.Mutex                   // held across every transaction that inserts
	keys map[paas.TaskKey]paas.TaskID // guarded by mu: the key of every readable task
}

var (
	_ paas.BatchStore     = (*Store)(nil)
	_ handler.ProofStorer = (*Store)(nil)
)

// Open opens the store in the file at path, creating the file if it does not exist (but not
// its directory). It fails with an error wrapping ErrLocked if another process holds the file
// for longer than opts.LockTimeout. A nil opts means the defaults.
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

	db, err := bbolt.Open(path, o.FileMode, &bbolt.Options{Timeout: o.LockTimeout, NoSync: o.NoSync})
	switch {
	case err == nil:
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("bolt: open %s: %w", path, ErrLocked)
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("bolt: open %s: its directory does not exist: %w", path, err)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("bolt: open %s: no permission to create or write the file: %w", path, err)
	default:
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}

	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketTasks, bucketUnfinished, bucketKeyLog, bucketProofs} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		// Release the lock: the caller gets no Store to Close.
		return nil, errors.Join(fmt.Errorf("bolt: open %s: %w", path, err), db.Close())
	}
	keys, err := loadKeys(db)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("bolt: open %s: %w", path, err), db.Close())
	}
	return &Store{db: db, path: path, keys: keys}, nil
}

// loadKeys reads the key of every task from the key log. The log is kept apart from the
// records so that the key of a task whose record is damaged is still known: a second Insert
// of it then reports the damage instead of creating a duplicate task. A damaged log entry
// fails Open for the same reason.
func loadKeys(db *bbolt.DB) (map[paas.TaskKey]paas.TaskID, error) {
	keys := make(map[paas.TaskKey]paas.TaskID)
	err := db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketKeyLog).ForEach(func(k, v []byte) error {
			id, ok := idFromBytes(v[:min(len(v), len(paas.TaskID{}))])
			if len(k) != 8 || !ok || len(v) == len(id) {
				return &CorruptRecordError{ID: id, Err: fmt.Errorf("malformed key log entry %x → %x", k, v)}
			}
			keys[paas.TaskKey(v[len(id):])] = id
			return nil
		})
	})
	return keys, err
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
	if err := s.db.Update(func(tx *bbolt.Tx) error { return fn(tx, keys) }); err != nil {
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
	err := s.db.Update(func(tx *bbolt.Tx) error { return updateTx(tx, rec) })
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
				err = wrap(err, "bolt: %s task %s", op, w.Record.ID)
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
	err := s.db.View(func(tx *bbolt.Tx) error {
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

// Unfinished implements paas.TaskStore. It reads only the unfinished tasks, through an index in
// Seq order, however many finished ones the file holds. It fails with a *CorruptRecordError if
// any unfinished task cannot be read back, rather than leave that task out and so lose it.
func (s *Store) Unfinished(ctx context.Context) ([]paas.TaskRecord, error) {
	if err := s.ready(ctx); err != nil {
		return nil, fmt.Errorf("bolt: unfinished tasks: %w", err)
	}
	var recs []paas.TaskRecord
	err := s.db.View(func(tx *bbolt.Tx) error {
		b, err := openBuckets(tx)
		if err != nil {
			return err
		}
		c := b.unfinished.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			id, ok := idFromBytes(v)
			if !ok || len(k) != 8 {
				return &CorruptRecordError{ID: id, Err: fmt.Errorf("malformed unfinished index entry %x → %x", k, v)}
			}
			seq := binary.BigEndian.Uint64(k)
			rec, err := getTx(b, id)
			if errors.Is(err, paas.ErrTaskNotFound) {
				return &CorruptRecordError{ID: id, Err: fmt.Errorf("unfinished index entry at seq %d names a task that is not stored", seq)}
			}
			if err != nil {
				return err
			}
			if rec.Seq != seq || rec.State.Final() {
				return &CorruptRecordError{ID: id, Err: fmt.Errorf(
					"unfinished index entry at seq %d disagrees with the record (seq %d, %s)", seq, rec.Seq, rec.State)}
			}
			recs = append(recs, rec)
		}
		return nil
	})
	if err != nil {
		return nil, wrap(err, "bolt: unfinished tasks")
	}
	return recs, nil
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
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b, err := openBuckets(tx)
		if err != nil {
			return err
		}
		return b.proofs.Put(id[:], val)
	})
	if err != nil {
		return wrap(err, "bolt: store proof of task %s", id)
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
	err := s.db.View(func(tx *bbolt.Tx) error {
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
	tasks, unfinished, keyLog, proofs *bbolt.Bucket
}

func openBuckets(tx *bbolt.Tx) (buckets, error) {
	b := buckets{
		tasks:      tx.Bucket(bucketTasks),
		unfinished: tx.Bucket(bucketUnfinished),
		keyLog:     tx.Bucket(bucketKeyLog),
		proofs:     tx.Bucket(bucketProofs),
	}
	if b.tasks == nil || b.unfinished == nil || b.keyLog == nil || b.proofs == nil {
		// Open creates them all, so the file has been tampered with.
		return b, abort(errors.New("bolt: a bucket of the store is missing"))
	}
	// New entries go at the end of these buckets (Seq and time-ordered ids grow), so full
	// pages are never split again: fill them up rather than leave bbolt's default half.
	b.tasks.FillPercent = appendFill
	b.unfinished.FillPercent = appendFill
	b.keyLog.FillPercent = appendFill
	return b, nil
}

// appendFill is the fill of pages in buckets written in key order. Records of the tasks bucket
// are rewritten in place as tasks move and may grow a little (a longer error), so leave some room.
const appendFill = 0.9

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
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], rec.Seq)
	if err := b.keyLog.Put(seq[:], append(rec.ID[:], rec.Key...)); err != nil {
		return paas.TaskRecord{}, abort(err)
	}
	keys.add(rec.Key, rec.ID)
	if err := indexTx(b, rec); err != nil {
		return paas.TaskRecord{}, err
	}
	// A copy, so that the caller's Program is not handed back as the store's.
	return rec.Clone(), nil
}

// updateTx is Update inside a write transaction. Like insertTx, it fails alone only before it
// changes anything.
func updateTx(tx *bbolt.Tx, rec paas.TaskRecord) error {
	b, err := openBuckets(tx)
	if err != nil {
		return err
	}
	old, err := getTx(b, rec.ID)
	if err != nil {
		return err
	}
	rec.Seq, rec.Key, rec.CreatedAt = old.Seq, old.Key, old.CreatedAt
	val, err := encodeRecord(rec)
	if err != nil {
		return fmt.Errorf("invalid record: %w", err)
	}
	if len(val) > bbolt.MaxValueSize {
		return fmt.Errorf("record of %d bytes exceeds the limit of %d", len(val), bbolt.MaxValueSize)
	}
	if err := b.tasks.Put(rec.ID[:], val); err != nil {
		return abort(err)
	}
	return indexTx(b, rec)
}

// indexTx puts rec in the unfinished index, or takes it out once final, so that Unfinished
// never has to read finished tasks.
func indexTx(b buckets, rec paas.TaskRecord) error {
	key := binary.BigEndian.AppendUint64(nil, rec.Seq)
	if rec.State.Final() {
		return abort(b.unfinished.Delete(key))
	}
	return abort(b.unfinished.Put(key, rec.ID[:]))
}
