package bolt

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/zkpaas/paas"
)

// Check checks the store file at path offline and returns nil if it is sound, or a
// *DamagedFileError listing what is damaged (up to MaxListedProblems). It checks the bbolt
// structure of the file, as Open does, and then what Open and the reads check only as they
// meet it: every record, index entry and proof must read back, every index entry must agree
// with its task's record, the index must hold an entry for every task (see scanIndex), and no
// two tasks may share a key.
//
// Check takes the file's lock shared, as a bbolt reader does, so that no Store writes the file
// while it reads; it waits for the lock up to DefaultLockTimeout, and fails with an error
// wrapping ErrLocked if a Store has the file open: stop the node first, or check a copy. While
// Check runs, an Open of the file waits for it, and fails with ErrLocked if Check takes longer
// than its Options.LockTimeout. Check never writes the file. It reads the whole file, which
// takes about as long as reading the file from disk.
//
// An empty file is reported as damaged: Open would start a new store in it, and whatever it
// held is lost. A file that does not exist, or cannot be read, gives another error.
func Check(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("bolt: check %s: %w", path, err)
	}
	if info.Size() == 0 {
		return &DamagedFileError{Path: path, Problems: []error{errors.New("the file is empty")}}
	}
	db, err := lockShared(path, DefaultLockTimeout)
	if err != nil {
		return err
	}
	if db != nil {
		defer db.Close()
	}
	s, err := checkStructure(path)
	if err != nil {
		return fmt.Errorf("bolt: check %s: %w", path, err)
	}
	if len(s.problems) == 0 && db == nil {
		s.problem("bbolt cannot open it, though its structure looks sound")
	}
	if len(s.problems) == 0 && s.buckets != 0 {
		s.strays()
		c := &recordCheck{s: s, reported: make(map[string]bool)}
		if err := guard(path, func() error { return db.View(c.run) }); err != nil {
			c.add(err)
		}
	}
	return s.err(path)
}

// lockShared opens the file at path with bbolt read-only, taking its lock shared, and returns
// the database, to close once done. If bbolt cannot open the file for another reason than the
// lock or the file system, it returns no database and no error: the file is damaged, and
// checkStructure tells how.
func lockShared(path string, timeout time.Duration) (*bbolt.DB, error) {
	db, err := bbolt.Open(path, 0, &bbolt.Options{ReadOnly: true, Timeout: timeout})
	_, pathErr := errors.AsType[*fs.PathError](err)
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("bolt: open %s: %w", path, ErrLocked)
	case pathErr:
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	return nil, nil
}

// checkBeforeOpen checks the structure of the file at path before Open lets bbolt map it,
// under the file's lock taken shared. It returns nil for a file that does not exist or is
// empty, which Open creates or initialises.
func checkBeforeOpen(path string, lockTimeout time.Duration) (*structure, error) {
	if info, err := os.Stat(path); err != nil || info.Size() == 0 {
		return nil, nil // bbolt creates it, or says why it cannot
	}
	db, err := lockShared(path, lockTimeout)
	if err != nil {
		return nil, err
	}
	if db != nil {
		defer db.Close()
	}
	s, err := checkStructure(path)
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	if err := s.err(path); err != nil {
		return nil, err
	}
	if db == nil {
		return nil, &DamagedFileError{Path: path, Problems: []error{errors.New("bbolt cannot open it, though its structure looks sound")}}
	}
	return s, nil
}

// current returns s if it is the structure of the state that tx, the first write transaction
// of Open, starts from, or checks the file again if not: the file is new, or another process
// wrote it between checkBeforeOpen and bbolt's lock. Open holds the lock now, so the file
// stays as checked.
func (s *structure) current(tx *bbolt.Tx, path string) (*structure, error) {
	if s != nil && s.txid == uint64(tx.ID())-1 {
		return s, nil
	}
	s, err := checkStructure(path)
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	return s, s.err(path)
}

// err returns the problems found as a *DamagedFileError, or nil if there are none.
func (s *structure) err(path string) error {
	if len(s.problems) == 0 {
		return nil
	}
	d := &DamagedFileError{Path: path, Problems: s.problems, Unlisted: s.unlisted}
	if len(s.problems) == 1 {
		if corrupt, ok := errors.AsType[*CorruptRecordError](s.problems[0]); ok {
			d.Task = corrupt.ID
		}
	}
	return d
}

// strays reports the records under keys that no index entry names, unless they read back as
// the task of their key. A record is written with its entry and deleted with it, so such a
// record is one whose key is damaged (and the task stored under the right key would read as
// not found), or damaged itself; a record that reads back as its task is merely left over
// (see TestCorruptIndexWithGapsFailsOpen). Open checks it once the index has passed loadKeys,
// which reports a damaged entry first.
func (s *structure) strays() {
	if len(s.suspects) == 0 {
		return // the usual case: no set of the index's ids to build
	}
	named := make(map[paas.TaskID]struct{}, len(s.indexIDs))
	for _, id := range s.indexIDs {
		named[id] = struct{}{}
	}
	for _, k := range s.suspects {
		if len(k) == len(paas.TaskID{}) {
			if _, ok := named[paas.TaskID(k)]; ok {
				continue
			}
		}
		s.problem("tasks bucket: under key %x, which no index entry names, a value that is not the record of that task: a damaged key or record", k)
	}
}

// strayRecords returns the error of s.strays for the file at path, or nil.
func (s *structure) strayRecords(path string) error {
	s.strays()
	return s.err(path)
}

// recordCheck is the part of Check that reads the records through bbolt, once the structure
// is known sound.
type recordCheck struct {
	s        *structure
	reported map[string]bool
}

// add adds a problem once: the same damage can be met from the index and from the records.
func (c *recordCheck) add(err error) {
	if msg := err.Error(); !c.reported[msg] {
		c.reported[msg] = true
		if len(c.s.problems) < MaxListedProblems {
			c.s.problems = append(c.s.problems, err)
		} else {
			c.s.unlisted++
		}
	}
}

func (c *recordCheck) run(tx *bbolt.Tx) error {
	b, err := openBuckets(tx)
	if err != nil {
		return err
	}
	if err := scanIndex(b, func(indexEntry) error { return nil }); err != nil {
		c.add(err)
	}
	keys := make(map[string]paas.TaskID)
	ix := b.index.Cursor()
	for k, v := ix.First(); k != nil; k, v = ix.Next() {
		e, err := decodeIndexEntry(k, v)
		if err != nil {
			c.add(err)
			continue
		}
		if other, ok := keys[string(e.key)]; ok {
			c.add(&CorruptRecordError{ID: e.id, Err: fmt.Errorf("index entry at seq %d: key %q is task %s's too", e.seq, e.key, other)})
		}
		keys[string(e.key)] = e.id
		rec, err := getTx(b, e.id)
		switch {
		case errors.Is(err, paas.ErrTaskNotFound):
			c.add(&CorruptRecordError{ID: e.id, Err: fmt.Errorf("index entry at seq %d names a task that is not stored", e.seq)})
		case err != nil:
			c.add(err)
		default:
			if err := entryAgrees(e, &rec); err != nil {
				c.add(err)
			}
		}
	}
	tc := b.tasks.Cursor()
	for k, v := tc.First(); k != nil; k, v = tc.Next() {
		if len(k) != len(paas.TaskID{}) {
			continue // a stray, reported by strays
		}
		if _, err := decodeRecord(paas.TaskID(k), v); err != nil {
			c.add(err)
		}
	}
	pc := b.proofs.Cursor()
	for k, v := pc.First(); k != nil; k, v = pc.Next() {
		if len(k) != len(paas.TaskID{}) {
			c.add(&CorruptRecordError{Err: fmt.Errorf("proof under a key of %d bytes, not a task id: %x", len(k), k)})
			continue
		}
		if _, err := decodeProof(paas.TaskID(k), v); err != nil {
			c.add(err)
		}
	}
	return nil
}
