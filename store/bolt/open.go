package bolt

import (
	"errors"
	"fmt"
	"io/fs"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/zkpaas/paas"
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

// openFile is Open once the options have their defaults: it checks the structure of the file
// before bbolt maps it (see checkBeforeOpen), opens it with bbolt, creates the buckets, and
// loads the keys of the index.
func openFile(path string, o Options) (*bbolt.DB, map[paas.TaskKey]paas.TaskID, error) {
	facts, err := checkBeforeOpen(path, o.LockTimeout)
	if err != nil {
		return nil, nil, err
	}
	var db *bbolt.DB
	err = guard(path, func() (err error) {
		db, err = bbolt.Open(path, o.FileMode, &bbolt.Options{Timeout: o.LockTimeout, NoSync: o.NoSync})
		return err
	})
	switch {
	case err == nil:
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, nil, fmt.Errorf("bolt: open %s: %w", path, ErrLocked)
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil, fmt.Errorf("bolt: open %s: its directory does not exist: %w", path, err)
	case errors.Is(err, fs.ErrPermission):
		return nil, nil, fmt.Errorf("bolt: open %s: no permission to create or write the file: %w", path, err)
	case isDamage(err):
		return nil, nil, err
	default:
		return nil, nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}

	err = guard(path, func() error {
		return db.Update(func(tx *bbolt.Tx) error {
			// Before bbolt walks any bucket: the file may have changed since checked.
			if facts, err = facts.current(tx, path); err != nil {
				return err
			}
			// A file written before the dependents bucket existed gets it filled from its records.
			fill := tx.Bucket(bucketDependents) == nil && tx.Bucket(bucketTasks) != nil
			for _, name := range [][]byte{bucketTasks, bucketIndex, bucketProofs, bucketDependents} {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return fmt.Errorf("create bucket %s: %w", name, err)
				}
			}
			if fill {
				if err := fillDependents(tx); err != nil {
					return err
				}
			}
			return trackProofs(tx.Bucket(bucketProofs))
		})
	})
	if err != nil {
		// Release the lock: the caller gets no Store to Close.
		return nil, nil, errors.Join(openError(path, err), db.Close())
	}
	var keys map[paas.TaskKey]paas.TaskID
	err = guard(path, func() (err error) { keys, err = loadKeys(db); return err })
	if err == nil {
		err = facts.strayRecords(path)
	}
	if err != nil {
		return nil, nil, errors.Join(openError(path, err), db.Close())
	}
	return db, keys, nil
}

// openError is err of Open, with the path named if err does not name it already.
func openError(path string, err error) error {
	if _, ok := errors.AsType[*DamagedFileError](err); ok {
		return err
	}
	return fmt.Errorf("bolt: open %s: %w", path, err)
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
		// The keys share blocks of memory (see arena), which the map keeps for the store's
		// life: at most the memory of the keys Open found, however many are pruned.
		var a arena
		return scanIndex(b, func(e indexEntry) error {
			keys[paas.TaskKey(a.string(e.key))] = e.id
			return nil
		})
	})
	return keys, err
}

// isDamage reports whether err is a *DamagedFileError.
func isDamage(err error) bool {
	_, ok := errors.AsType[*DamagedFileError](err)
	return ok
}
