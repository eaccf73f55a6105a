// Package memory provides Store, a paas.TaskStore that keeps tasks in memory.
//
// It is meant for unit tests, examples and experiments: it needs no setup and is fast, but
// nothing it holds survives the process, so a service restarted on a new Store has forgotten
// every task, finished or not. Use a durable store in production.
//
// memory.go holds Store, the TaskStore; proofs.go ProofStore, a paas.ProofStorer and
// paas.ProofReader for the proofs of handlers.
package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/zkpaas/paas"
)

// Store is an in-memory paas.TaskStore and paas.BatchStore. It is safe for concurrent use. Records are copied on the
// way in and on the way out, so callers may keep and mutate the records they pass and receive.
//
// The zero Store is empty and ready to use.
type Store struct {
	mu    sync.Mutex
	byID  map[paas.TaskID]*paas.TaskRecord // updated in place
	byKey map[paas.TaskKey]paas.TaskID
	seq   uint64 // the last Seq assigned
}

var _ paas.BatchStore = (*Store)(nil)

// New returns an empty Store.
func New() *Store {
	return &Store{
		byID:  make(map[paas.TaskID]*paas.TaskRecord),
		byKey: make(map[paas.TaskKey]paas.TaskID),
	}
}

// Insert implements paas.TaskStore. It returns an error if a task with rec.ID but another key
// is already stored, since storing rec would orphan that task's key.
func (s *Store) Insert(ctx context.Context, rec paas.TaskRecord) (paas.TaskRecord, error) {
	if err := ctx.Err(); err != nil {
		return paas.TaskRecord{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.insertLocked(rec)
}

func (s *Store) insertLocked(rec paas.TaskRecord) (paas.TaskRecord, error) {
	if id, ok := s.byKey[rec.Key]; ok {
		return s.byID[id].Clone(), nil
	}
	if _, ok := s.byID[rec.ID]; ok {
		return paas.TaskRecord{}, fmt.Errorf("memory: insert task %s: id already stored under another key", rec.ID)
	}
	if s.byID == nil {
		s.byID = make(map[paas.TaskID]*paas.TaskRecord)
		s.byKey = make(map[paas.TaskKey]paas.TaskID)
	}
	s.seq++
	rec.Seq = s.seq
	stored := rec.Clone()
	s.byID[rec.ID] = &stored
	s.byKey[rec.Key] = rec.ID
	// rec shares its slices with the caller's record, not with the store's.
	return rec, nil
}

// Update implements paas.TaskStore. The stored Seq, Key and CreatedAt are kept whatever rec holds.
func (s *Store) Update(ctx context.Context, rec paas.TaskRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updateLocked(rec)
}

func (s *Store) updateLocked(rec paas.TaskRecord) error {
	old, ok := s.byID[rec.ID]
	if !ok {
		return fmt.Errorf("memory: update task %s: %w", rec.ID, paas.ErrTaskNotFound)
	}
	seq, key, created := old.Seq, old.Key, old.CreatedAt
	if rec.Version != 0 && old.Version != rec.Version-1 {
		return fmt.Errorf("memory: update task %s to version %d: stored version is %d: %w",
			rec.ID, rec.Version, old.Version, paas.ErrConflict)
	}
	// The slices that did not change are kept rather than copied again: an update changes a
	// task's state and counters far more often than its program.
	program, deps, checkpoint := old.Program, old.DependsOn, old.Checkpoint
	*old = rec
	old.Seq, old.Key, old.CreatedAt = seq, key, created
	old.Program = keep(program, rec.Program)
	old.DependsOn = keep(deps, rec.DependsOn)
	old.Checkpoint = keep(checkpoint, rec.Checkpoint)
	return nil
}

// keep returns old if it holds what new does, and a copy of new otherwise.
func keep[S ~[]E, E comparable](old, new S) S {
	if (old == nil) == (new == nil) && slices.Equal(old, new) {
		return old
	}
	return slices.Clone(new)
}

// WriteBatch implements paas.BatchStore. It applies the writes in order under one hold of the
// lock, so no other call sees part of a batch. A write that fails (an update of an unknown task)
// fails alone; if ctx has ended, every write fails with ctx.Err() and none is applied. The
// Record of an update's result is left zero.
func (s *Store) WriteBatch(ctx context.Context, writes []paas.Write) []paas.WriteResult {
	results := make([]paas.WriteResult, len(writes))
	if err := ctx.Err(); err != nil {
		for i := range results {
			results[i].Err = err
		}
		return results
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, w := range writes {
		if w.Insert {
			results[i] = paas.InsertResult(s.insertLocked(w.Record))
		} else {
			results[i].Err = s.updateLocked(w.Record)
		}
	}
	return results
}

// Get implements paas.TaskStore.
func (s *Store) Get(ctx context.Context, id paas.TaskID) (paas.TaskRecord, error) {
	if err := ctx.Err(); err != nil {
		return paas.TaskRecord{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	rec, ok := s.byID[id]
	if !ok {
		return paas.TaskRecord{}, fmt.Errorf("memory: get task %s: %w", id, paas.ErrTaskNotFound)
	}
	return rec.Clone(), nil
}

// GetByKey implements paas.TaskStore.
func (s *Store) GetByKey(ctx context.Context, key paas.TaskKey) (paas.TaskRecord, error) {
	if err := ctx.Err(); err != nil {
		return paas.TaskRecord{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.byKey[key]
	if !ok {
		return paas.TaskRecord{}, fmt.Errorf("memory: get task of key %s: %w", key, paas.ErrTaskNotFound)
	}
	return s.byID[id].Clone(), nil
}

// Unfinished implements paas.TaskStore.
func (s *Store) Unfinished(ctx context.Context) ([]paas.TaskRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	var recs []paas.TaskRecord
	for _, rec := range s.byID {
		if !rec.State.Final() {
			recs = append(recs, rec.Clone())
		}
	}
	// Map iteration order is random; the contract wants submission order.
	slices.SortFunc(recs, func(a, b paas.TaskRecord) int { return cmp.Compare(a.Seq, b.Seq) })
	return recs, nil
}

// Prune implements paas.TaskStore. It deletes, under one hold of the lock, every task in a
// final state whose UpdatedAt is before the given time and on which no unfinished task
// depends, and frees its key.
func (s *Store) Prune(ctx context.Context, before time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	needed := make(map[paas.TaskID]bool)
	for _, rec := range s.byID {
		if !rec.State.Final() {
			for _, dep := range rec.DependsOn {
				needed[dep] = true
			}
		}
	}
	n := 0
	for id, rec := range s.byID {
		if rec.State.Final() && rec.UpdatedAt.Before(before) && !needed[id] {
			delete(s.byID, id)
			if s.byKey[rec.Key] == id {
				delete(s.byKey, rec.Key)
			}
			n++
		}
	}
	return n, nil
}

// Len returns the number of tasks stored, in any state.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}
