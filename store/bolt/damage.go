package bolt

import (
	"errors"
	"fmt"
	"runtime/debug"
	"strings"

	"go.etcd.io/bbolt"

	"github.com/zkpaas/paas"
)

// DamagedFileError reports a store file that is damaged: its bbolt structure does not hold
// together (a truncated file, a zeroed or overwritten page, keys out of order, a page used
// twice), the values it holds disagree with each other, or a value cannot be read back.
//
// Open returns it for damage to the structure, which it checks before bbolt reads anything
// of the file, since bbolt would crash the process or misroute a lookup over such damage;
// the reads return it for the damage they meet. A value that cannot be read back is also a
// *CorruptRecordError, which is among the Problems, so that errors.As still finds it.
//
// A damaged file is not repaired by retrying: see the package documentation for what an
// operator does with one.
type DamagedFileError struct {
	Path string
	// Task is the task whose record, index entry or proof is damaged, when the damage is one
	// task's and known; it is zero otherwise.
	Task paas.TaskID
	// Problems are what is damaged, at least one. Check lists up to MaxListedProblems.
	Problems []error
	// Unlisted counts the further problems that Check found but did not list.
	Unlisted int
}

// MaxListedProblems is how many problems Check lists in its DamagedFileError at most.
const MaxListedProblems = 100

// Error names the file, the task when known, and the problems.
func (e *DamagedFileError) Error() string {
	var b strings.Builder
	b.WriteString("bolt: damaged file ")
	b.WriteString(e.Path)
	if !e.Task.IsZero() && !strings.Contains(fmt.Sprint(e.Problems), e.Task.String()) {
		b.WriteString(", task ")
		b.WriteString(e.Task.String())
	}
	for i, p := range e.Problems {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(strings.TrimPrefix(p.Error(), "bolt: "))
	}
	if e.Unlisted > 0 {
		fmt.Fprintf(&b, "; and %d more", e.Unlisted)
	}
	return b.String()
}

// Unwrap returns the problems.
func (e *DamagedFileError) Unwrap() []error { return e.Problems }

// damaged returns err as the *DamagedFileError of the file at path if it reports damage (a
// *CorruptRecordError not yet so wrapped), and err unchanged otherwise.
func damaged(path string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*DamagedFileError](err); ok {
		return err
	}
	if corrupt, ok := errors.AsType[*CorruptRecordError](err); ok {
		return &DamagedFileError{Path: path, Task: corrupt.ID, Problems: []error{err}}
	}
	return err
}

// guard runs fn, which reads the file at path through bbolt's memory map, and turns a panic
// of bbolt over a damaged page, or a fault reading the map (a file truncated under the
// running store reads as SIGBUS), into a *DamagedFileError; it also names the file in a
// *CorruptRecordError that fn returns. Open checks the structure of the file before bbolt
// reads any of it, so a panic here means damage done since, or missed by that check.
//
// Faults turn into panics only on the goroutine that sets it, so fn must not hand its reads
// to another goroutine.
func guard(path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = &DamagedFileError{Path: path, Problems: []error{fmt.Errorf("reading the file failed: %v", r)}}
		}
	}()
	return damaged(path, fn())
}

// view is s.db.View under guard.
func (s *Store) view(fn func(tx *bbolt.Tx) error) error {
	return guard(s.path, func() error { return s.db.View(fn) })
}

// update is s.db.Update under guard. A panic in a write transaction rolls it back, as bbolt's
// Update does for any panic, so nothing of it reaches the file.
func (s *Store) update(fn func(tx *bbolt.Tx) error) error {
	return guard(s.path, func() error { return s.db.Update(fn) })
}
