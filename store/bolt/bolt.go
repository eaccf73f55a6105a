package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/zkpaas/paas"
)

var (
	// ErrLocked is wrapped by the error of Open when another process, or another open Store
	// in this one, holds the file. Two writers would corrupt it, so bbolt locks it exclusively.
	ErrLocked = errors.New("bolt: store file is in use by another process (or another open Store)")
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

// Store is a paas.TaskStore, paas.BatchStore and paas.ProofStorer kept in one bbolt file.
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
	_ paas.BatchStore  = (*Store)(nil)
	_ paas.ProofStorer = (*Store)(nil)
)

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
	if ab, ok := errors.AsType[*txAbort](err); ok {
		err = ab.err
	}
	if _, ok := errors.AsType[*CorruptRecordError](err); ok {
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
