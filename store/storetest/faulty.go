package storetest

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/zkpaas/paas"
)

// ErrInjected is the error of the failures that Faulty injects when it is given no error of
// its own.
var ErrInjected = errors.New("storetest: injected failure")

// Faulty wraps a paas.TaskStore and fails the writes it is told to, so that tests of services
// can check how they handle a store that fails: that a task whose insert failed is reported
// as not submitted, that an update that failed is retried or surfaced, and so on.
//
// A write that Faulty fails, an insert, update, batch or prune, never reaches the inner store,
// so it changes nothing. Get and Unfinished go straight to the inner store.
//
// Faulty always implements paas.BatchStore, whether the inner store does or not: it fails the
// chosen writes of a batch itself and hands the others to the inner store's WriteBatch if it
// has one, or else to Insert and Update one by one (which then are not one transaction).
//
// Faulty is safe for concurrent use. The zero Faulty is not usable; build one with NewFaulty.
type Faulty struct {
	paas.TaskStore

	mu          sync.Mutex
	failInserts int // how many of the next insert writes to fail
	insertErr   error
	failUpdates int
	updateErr   error
	failBatches int
	batchErr    error
	failPrunes  int
	pruneErr    error
	inserts     int // insert writes attempted, failed or not
	updates     int
	batches     int
	prunes      int
}

var _ paas.BatchStore = (*Faulty)(nil)

// NewFaulty returns a Faulty that passes every call to inner until told to fail some.
func NewFaulty(inner paas.TaskStore) *Faulty {
	return &Faulty{TaskStore: inner}
}

// FailInserts makes the next n insert writes, through Insert or inside a WriteBatch, fail with
// err (ErrInjected if err is nil), storing nothing. It replaces any earlier arrangement for
// inserts; n <= 0 cancels it.
func (f *Faulty) FailInserts(n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failInserts, f.insertErr = max(n, 0), orInjected(err)
}

// FailUpdates makes the next n update writes, through Update or inside a WriteBatch, fail with
// err (ErrInjected if err is nil), changing nothing. It replaces any earlier arrangement for
// updates; n <= 0 cancels it.
func (f *Faulty) FailUpdates(n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failUpdates, f.updateErr = max(n, 0), orInjected(err)
}

// FailBatches makes the next n calls of WriteBatch fail as a failed transaction does: every
// write of the batch fails with err (ErrInjected if err is nil) and none is applied. A failed
// batch uses up none of the failures arranged by FailInserts and FailUpdates. It replaces any
// earlier arrangement for batches; n <= 0 cancels it.
func (f *Faulty) FailBatches(n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failBatches, f.batchErr = max(n, 0), orInjected(err)
}

// FailPrunes makes the next n calls of Prune fail with err (ErrInjected if err is nil),
// deleting nothing. It replaces any earlier arrangement for prunes; n <= 0 cancels it.
func (f *Faulty) FailPrunes(n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failPrunes, f.pruneErr = max(n, 0), orInjected(err)
}

// Prunes returns how many times Prune was called, including calls that failed.
func (f *Faulty) Prunes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.prunes
}

// Prune counts the call and fails it if arranged; otherwise it calls the inner store's Prune.
func (f *Faulty) Prune(ctx context.Context, before time.Time) (int, error) {
	f.mu.Lock()
	f.prunes++
	var err error
	if f.failPrunes > 0 {
		f.failPrunes--
		err = f.pruneErr
	}
	f.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return f.TaskStore.Prune(ctx, before)
}

// Inserts returns how many insert writes were attempted, through Insert or inside a
// WriteBatch, including those that failed.
func (f *Faulty) Inserts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inserts
}

// Updates returns how many update writes were attempted, through Update or inside a
// WriteBatch, including those that failed.
func (f *Faulty) Updates() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.updates
}

// Batches returns how many times WriteBatch was called, including calls that failed.
func (f *Faulty) Batches() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.batches
}

// Insert counts the insert and fails it if arranged; otherwise it calls the inner store's Insert.
func (f *Faulty) Insert(ctx context.Context, rec paas.TaskRecord) (paas.TaskRecord, error) {
	f.mu.Lock()
	err := f.takeLocked(true)
	f.mu.Unlock()
	if err != nil {
		return paas.TaskRecord{}, err
	}
	return f.TaskStore.Insert(ctx, rec)
}

// Update counts the update and fails it if arranged; otherwise it calls the inner store's Update.
func (f *Faulty) Update(ctx context.Context, rec paas.TaskRecord) error {
	f.mu.Lock()
	err := f.takeLocked(false)
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.TaskStore.Update(ctx, rec)
}

// WriteBatch implements paas.BatchStore. It counts the batch and each write, fails the whole
// batch or single writes as arranged, and passes the other writes, in order, to the inner store.
func (f *Faulty) WriteBatch(ctx context.Context, writes []paas.Write) []paas.WriteResult {
	results := make([]paas.WriteResult, len(writes))
	passed := make([]int, 0, len(writes)) // indexes of the writes that go to the inner store

	// Decide every failure under one hold of the lock, so that concurrent calls consume the
	// arranged failures exactly once each.
	f.mu.Lock()
	f.batches++
	if f.failBatches > 0 {
		f.failBatches--
		err := f.batchErr
		for i, w := range writes {
			f.countLocked(w.Insert)
			results[i].Err = err
		}
		f.mu.Unlock()
		return results
	}
	for i, w := range writes {
		if err := f.takeLocked(w.Insert); err != nil {
			results[i].Err = err
			continue
		}
		passed = append(passed, i)
	}
	f.mu.Unlock()

	if len(passed) == 0 {
		return results
	}
	if bs, ok := f.TaskStore.(paas.BatchStore); ok {
		sub := make([]paas.Write, len(passed))
		for j, i := range passed {
			sub[j] = writes[i]
		}
		subResults := bs.WriteBatch(ctx, sub)
		for j, i := range passed {
			if j < len(subResults) {
				results[i] = subResults[j]
			} else {
				// The inner store broke the contract; say so rather than report success.
				results[i].Err = errors.New("storetest: inner WriteBatch returned too few results")
			}
		}
		return results
	}
	for _, i := range passed {
		w := writes[i]
		if w.Insert {
			results[i] = paas.InsertResult(f.TaskStore.Insert(ctx, w.Record))
		} else {
			results[i].Err = f.TaskStore.Update(ctx, w.Record)
		}
	}
	return results
}

// takeLocked counts one write and returns the error it must fail with, or nil to let it through.
func (f *Faulty) takeLocked(insert bool) error {
	f.countLocked(insert)
	if insert {
		if f.failInserts > 0 {
			f.failInserts--
			return f.insertErr
		}
		return nil
	}
	if f.failUpdates > 0 {
		f.failUpdates--
		return f.updateErr
	}
	return nil
}

func (f *Faulty) countLocked(insert bool) {
	if insert {
		f.inserts++
	} else {
		f.updates++
	}
}

func orInjected(err error) error {
	if err == nil {
		return ErrInjected
	}
	return err
}
