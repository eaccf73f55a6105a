package bolt

import (
	"slices"

	"go.etcd.io/bbolt"

	"github.com/zkpaas/paas"
)

// dependentKey is the key of the dependents bucket that says task waits for dep.
func dependentKey(dep, task paas.TaskID) []byte {
	return append(append(make([]byte, 0, 2*len(dep)), dep[:]...), task[:]...)
}

// setDependents rewrites the entries of the dependents bucket for a task written as rec over
// old (the zero record for an insert): an unfinished task has one entry per dependency, a
// finished one none. It writes nothing in the common case, an update that changes neither.
func setDependents(b buckets, old, rec paas.TaskRecord) error {
	var had, has []paas.TaskID
	if !old.ID.IsZero() && !old.State.Final() {
		had = old.DependsOn
	}
	if !rec.State.Final() {
		has = rec.DependsOn
	}
	if slices.Equal(had, has) {
		return nil
	}
	for _, dep := range had {
		if err := b.dependents.Delete(dependentKey(dep, old.ID)); err != nil {
			return err
		}
	}
	for _, dep := range has {
		if err := b.dependents.Put(dependentKey(dep, rec.ID), nil); err != nil {
			return err
		}
	}
	return nil
}

// fillDependents writes the dependents bucket of a file written before it existed, from the
// records of the unfinished tasks.
func fillDependents(tx *bbolt.Tx) error {
	b, err := openBuckets(tx)
	if err != nil {
		return err
	}
	return scanIndex(b, func(e indexEntry) error {
		if e.finished {
			return nil
		}
		rec, err := getTx(b, e.id)
		if err != nil {
			return err
		}
		return setDependents(b, paas.TaskRecord{}, rec)
	})
}
