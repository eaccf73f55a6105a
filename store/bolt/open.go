package bolt

import (
	"errors"
	"fmt"
	"io/fs"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/zkpaas/paas"
)

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
	case errors.As(err, new(*DamagedFileError)):
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
	if d := (*DamagedFileError)(nil); errors.As(err, &d) {
		return err
	}
	return fmt.Errorf("bolt: open %s: %w", path, err)
}
