package bolt

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/zkpaas/paas"
)

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
				res paas.WriteResult
				err error
				op  = "update"
			)
			if w.Insert {
				op = "insert"
				res = paas.InsertResult(insertTx(tx, keys, w.Record))
				err = res.Err
			} else {
				err = updateTx(tx, w.Record)
			}
			if ab, ok := errors.AsType[*txAbort](err); ok {
				return ab.err // the transaction is broken: roll back everything
			}
			if err != nil {
				err = damaged(s.path, wrap(err, "bolt: %s task %s", op, w.Record.ID))
			}
			res.Err = err
			results[i] = res
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
	if err := validateRecord(&rec); err != nil {
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
		if corrupt, ok := errors.AsType[*CorruptRecordError](err); ok && corrupt.ID.IsZero() {
			corrupt.ID = old.ID // the entry is too damaged to name its task, but it is this one's
		}
		if err != nil {
			return err
		}
		if err := entryAgrees(e, &old); err != nil {
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
