package storetest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/store/storetest"
)

// A suite that passes every store proves nothing, so each fault below breaks one clause of the
// contract and must make the named subtest fail. Run cannot be called with a testing.T whose
// failure we may ignore, so each faulty store runs in a child process of this test binary.
var faults = map[string]string{
	"":                   "", // the faultless store must pass
	"ignore-key":         "InsertDuplicateKey",
	"dup-returns-input":  "InsertDuplicateKey",
	"racy-dedup":         "InsertDuplicateKeyConcurrent",
	"no-seq":             "Insert",
	"caller-seq":         "InsertIgnoresCallerSeq",
	"shared-program":     "NoSharedMemory",
	"mutable-identity":   "UpdateKeepsIdentity",
	"partial-update":     "Update",
	"keep-on-zero":       "UpdateClearsFields",
	"update-inserts":     "UpdateUnknownID",
	"bare-not-found":     "GetUnknownID",
	"unfinished-all":     "Unfinished",
	"unfinished-reverse": "Unfinished",
	"ignore-ctx":         "CancelledContext",
	"ctx-after-write":    "CancelledContext",
	"truncate-seconds":   "TimesRoundTrip",
	"shallow-clone":      "NoSharedMemory",
	"drop-checkpoint":    "AllFieldsRoundTrip",
	"no-blocked":         "BlockedIsUnfinished",
	"prune-unfinished":   "Prune",
	"prune-inclusive":    "Prune",
	"prune-miscount":     "Prune",
	"prune-keeps-key":    "PruneForgetsKey",
	"prune-reuses-seq":   "PruneForgetsKey",
	"prune-ignore-ctx":   "PruneCancelledContext",
	"prune-dependencies": "PruneKeepsDependencies",
	"no-fence":           "UpdateFenced",
	"fence-any-version":  "UpdateFenced",
	"by-key-unfinished":  "GetByKey",

	// Faults of WriteBatch, for a store that has one. "batch" is the faultless one.
	"batch":                "",
	"batch-reverse":        "WriteBatchMixed",
	"batch-no-dedup":       "WriteBatchDuplicateKey",
	"batch-abort-on-error": "WriteBatchUnknownID",
	"batch-ignore-ctx":     "WriteBatchCancelledContext",
	"batch-shared-write":   "WriteBatchNoSharedMemory",
	"batch-no-fence":       "WriteBatchFenced",
}

const faultEnv = "STORETEST_FAULT"

func TestSuiteCatchesFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the test binary once per fault")
	}
	for fault, failing := range faults {
		t.Run("fault="+fault, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestFaultyStore$", "-test.count=1")
			cmd.Env = append(os.Environ(), faultEnv+"="+fault)
			out, err := cmd.CombinedOutput()
			if failing == "" {
				if err != nil {
					t.Fatalf("the faultless store failed the suite: %v\n%s", err, out)
				}
				return
			}
			if err == nil {
				t.Fatalf("the suite passed a store with fault %q\n%s", fault, out)
			}
			if want := "--- FAIL: TestFaultyStore/" + failing; !strings.Contains(string(out), want) {
				t.Fatalf("fault %q: output lacks %q\n%s", fault, want, out)
			}
		})
	}
}

// TestFaultyStore runs the suite against a store with the fault named in $STORETEST_FAULT, as
// TestSuiteCatchesFaults asks; without it, against the faultless one, which must pass.
func TestFaultyStore(t *testing.T) {
	fault := os.Getenv(faultEnv)
	if _, known := faults[fault]; !known {
		t.Fatalf("unknown fault %q", fault)
	}
	storetest.Run(t, func(*testing.T) paas.TaskStore {
		s := &faultyStore{fault: fault}
		if strings.HasPrefix(fault, "batch") {
			return &faultyBatchStore{s}
		}
		return s
	})
}

func TestNewRecord(t *testing.T) {
	a, b := storetest.NewRecord("p"), storetest.NewRecord("p")
	if a.ID == b.ID || a.ID.IsZero() {
		t.Errorf("NewRecord must give fresh ids, got %s and %s", a.ID, b.ID)
	}
	if a.Key != b.Key || a.Key != paas.KeyOf("test", []byte("p"), paas.BackendNative) {
		t.Errorf("records of one program must share its key")
	}
	if a.State != paas.Pending || a.Weight != 1 || a.Seq != 0 {
		t.Errorf("NewRecord = %+v, want a Pending record of weight 1 without Seq", a)
	}
	if a.Priority != 0 || a.DependsOn != nil || a.Timeout != 0 || a.Restarts != 0 || a.Checkpoint != nil ||
		!a.FailedDependency.IsZero() || !a.WaitingSince.IsZero() || a.Attempts != 0 || a.LastError != "" || !a.NextAttemptAt.IsZero() {
		t.Errorf("NewRecord = %+v, want the fields of a task submitted without options zero", a)
	}
	if a.CreatedAt.Location() != time.UTC || a.CreatedAt.Nanosecond()%1000 != 0 {
		t.Errorf("CreatedAt %v must be UTC at microsecond precision", a.CreatedAt)
	}
}

// faultyStore is a plain, slow TaskStore that can be told to break one rule.
type faultyStore struct {
	fault  string
	mu     sync.Mutex
	recs   []paas.TaskRecord // in Seq order
	seq    uint64
	ghosts []paas.TaskRecord // pruned, for the fault prune-keeps-key
}

func (s *faultyStore) is(fault string) bool { return s.fault == fault }

func (s *faultyStore) find(id paas.TaskID) int {
	return slices.IndexFunc(s.recs, func(r paas.TaskRecord) bool { return r.ID == id })
}

// out copies r, on the way in or out of the store, as the store's faults allow.
func (s *faultyStore) out(r paas.TaskRecord) paas.TaskRecord {
	switch {
	case s.is("shared-program"):
		return r
	case s.is("shallow-clone"): // a Clone written before the record had more than Program
		r.Program = slices.Clone(r.Program)
		return r
	}
	return r.Clone()
}

// byKey returns the index of the record of key in s.recs, or -1; with the fault
// prune-keeps-key, an index past the records for a pruned record of key in s.ghosts.
func (s *faultyStore) byKey(key paas.TaskKey) int {
	if i := slices.IndexFunc(s.recs, func(r paas.TaskRecord) bool { return r.Key == key }); i >= 0 || !s.is("prune-keeps-key") {
		return i
	}
	if i := slices.IndexFunc(s.ghosts, func(r paas.TaskRecord) bool { return r.Key == key }); i >= 0 {
		return len(s.recs) + i
	}
	return -1
}

func (s *faultyStore) at(i int) paas.TaskRecord {
	if i < len(s.recs) {
		return s.recs[i]
	}
	return s.ghosts[i-len(s.recs)]
}

// ctxErr is the check at the start of each method. A store with fault ctx-after-write skips it
// in the methods that write and checks only once it has written.
func (s *faultyStore) ctxErr(ctx context.Context, write bool) error {
	if s.is("ignore-ctx") || write && s.is("ctx-after-write") {
		return nil
	}
	return ctx.Err()
}

func (s *faultyStore) notFound(id paas.TaskID) error {
	if s.is("bare-not-found") {
		return fmt.Errorf("task %s not found", id)
	}
	return fmt.Errorf("task %s: %w", id, paas.ErrTaskNotFound)
}

func (s *faultyStore) Insert(ctx context.Context, rec paas.TaskRecord) (paas.TaskRecord, error) {
	if err := s.ctxErr(ctx, true); err != nil {
		return paas.TaskRecord{}, err
	}
	if s.is("racy-dedup") {
		// Check and insert under separate locks, yielding between them so that other Inserts
		// of the key slip in.
		s.mu.Lock()
		i := slices.IndexFunc(s.recs, func(r paas.TaskRecord) bool { return r.Key == rec.Key })
		var existing paas.TaskRecord
		if i >= 0 {
			existing = s.out(s.recs[i])
		}
		s.mu.Unlock()
		if i >= 0 {
			return existing, nil
		}
		runtime.Gosched()
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.insertLocked(ctx, rec)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.is("ignore-key") {
		if i := s.byKey(rec.Key); i >= 0 {
			if s.is("dup-returns-input") {
				return rec, nil
			}
			return s.out(s.at(i)), nil
		}
	}
	return s.insertLocked(ctx, rec)
}

func (s *faultyStore) insertLocked(ctx context.Context, rec paas.TaskRecord) (paas.TaskRecord, error) {
	switch {
	case s.is("no-seq"):
	case s.is("caller-seq") && rec.Seq != 0:
	default:
		s.seq++
		rec.Seq = s.seq
	}
	if s.is("truncate-seconds") {
		rec.CreatedAt = rec.CreatedAt.Truncate(1e9)
	}
	rec = s.out(rec)
	s.recs = append(s.recs, rec)
	if s.is("ctx-after-write") {
		if err := ctx.Err(); err != nil {
			return paas.TaskRecord{}, err
		}
	}
	return s.out(rec), nil
}

func (s *faultyStore) Update(ctx context.Context, rec paas.TaskRecord) error {
	if err := s.ctxErr(ctx, true); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(rec.ID)
	if i < 0 {
		if s.is("update-inserts") {
			s.recs = append(s.recs, rec.Clone())
			return nil
		}
		return s.notFound(rec.ID)
	}
	old := s.recs[i]
	stale := rec.Version != 0 && old.Version != rec.Version-1
	if s.is("fence-any-version") {
		stale = rec.Version != 0 && old.Version >= rec.Version // lets a write skip versions
	}
	if stale && !s.is("no-fence") && !s.is("batch-no-fence") {
		return fmt.Errorf("task %s: %w", rec.ID, paas.ErrConflict)
	}
	rec = s.out(rec)
	if !s.is("mutable-identity") {
		rec.Seq, rec.Key, rec.CreatedAt = old.Seq, old.Key, old.CreatedAt
	}
	switch {
	case s.is("partial-update"):
		old.State = rec.State
		rec = old
	case s.is("keep-on-zero"):
		if rec.LastError == "" {
			rec.LastError = old.LastError
		}
		if rec.NextAttemptAt.IsZero() {
			rec.NextAttemptAt = old.NextAttemptAt
		}
	case s.is("drop-checkpoint"):
		rec.Checkpoint = old.Checkpoint
	}
	s.recs[i] = rec
	if s.is("ctx-after-write") {
		return ctx.Err()
	}
	return nil
}

func (s *faultyStore) Get(ctx context.Context, id paas.TaskID) (paas.TaskRecord, error) {
	if err := s.ctxErr(ctx, false); err != nil {
		return paas.TaskRecord{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(id)
	if i < 0 {
		return paas.TaskRecord{}, s.notFound(id)
	}
	return s.out(s.recs[i]), nil
}

func (s *faultyStore) GetByKey(ctx context.Context, key paas.TaskKey) (paas.TaskRecord, error) {
	if err := s.ctxErr(ctx, false); err != nil {
		return paas.TaskRecord{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.byKey(key)
	if i < 0 || s.is("by-key-unfinished") && s.at(i).State.Final() {
		return paas.TaskRecord{}, fmt.Errorf("key %s: %w", key, paas.ErrTaskNotFound)
	}
	return s.out(s.at(i)), nil
}

func (s *faultyStore) Unfinished(ctx context.Context) ([]paas.TaskRecord, error) {
	if err := s.ctxErr(ctx, false); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var recs []paas.TaskRecord
	for _, r := range s.recs {
		if s.is("no-blocked") && r.State == paas.Blocked {
			continue
		}
		if s.is("unfinished-all") || !r.State.Final() {
			recs = append(recs, s.out(r))
		}
	}
	if s.is("unfinished-reverse") {
		slices.Reverse(recs)
	}
	return recs, nil
}

func (s *faultyStore) Prune(ctx context.Context, before time.Time) (int, error) {
	if !s.is("prune-ignore-ctx") {
		if err := s.ctxErr(ctx, true); err != nil {
			return 0, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	needed := make(map[paas.TaskID]bool)
	for _, r := range s.recs {
		if !r.State.Final() && !s.is("prune-dependencies") {
			for _, dep := range r.DependsOn {
				needed[dep] = true
			}
		}
	}
	n := 0
	kept := make([]paas.TaskRecord, 0, len(s.recs))
	for _, r := range s.recs {
		prunable := r.State.Final() && r.UpdatedAt.Before(before) && !needed[r.ID]
		switch {
		case s.is("prune-unfinished"):
			prunable = r.UpdatedAt.Before(before)
		case s.is("prune-inclusive"):
			prunable = r.State.Final() && !r.UpdatedAt.After(before)
		}
		if prunable {
			n++
			s.ghosts = append(s.ghosts, r)
			continue
		}
		kept = append(kept, r)
	}
	s.recs = kept
	if s.is("prune-reuses-seq") {
		s.seq = 0
		for _, r := range kept {
			s.seq = max(s.seq, r.Seq)
		}
	}
	if s.is("prune-miscount") {
		return 0, nil
	}
	if s.is("ctx-after-write") {
		return n, ctx.Err()
	}
	return n, nil
}

// faultyBatchStore adds to faultyStore a WriteBatch that can be told to break one rule. It
// applies a batch write by write, which is not atomic, but the suite does not look for that.
type faultyBatchStore struct{ *faultyStore }

func (s *faultyBatchStore) WriteBatch(ctx context.Context, writes []paas.Write) []paas.WriteResult {
	results := make([]paas.WriteResult, len(writes))
	if s.is("batch-ignore-ctx") {
		ctx = context.WithoutCancel(ctx)
	}
	if s.is("batch-abort-on-error") {
		// Fail the whole batch for one bad update, as a store that returns the error from its
		// transaction function would.
		inBatch := make(map[paas.TaskID]bool)
		for _, w := range writes {
			s.mu.Lock()
			known := s.find(w.Record.ID) >= 0
			s.mu.Unlock()
			if w.Insert {
				inBatch[w.Record.ID] = true
			} else if !known && !inBatch[w.Record.ID] {
				for i := range results {
					results[i].Err = s.notFound(w.Record.ID)
				}
				return results
			}
		}
	}
	order := make([]int, len(writes))
	for i := range order {
		order[i] = i
	}
	if s.is("batch-reverse") {
		slices.Reverse(order)
	}
	batchKeys := make(map[paas.TaskKey]bool)
	for _, i := range order {
		w := writes[i]
		if !w.Insert {
			results[i].Err = s.Update(ctx, w.Record)
			continue
		}
		if s.is("batch-no-dedup") && batchKeys[w.Record.Key] {
			// Dedup only against what was stored before the batch.
			s.mu.Lock()
			results[i] = paas.InsertResult(s.insertLocked(ctx, w.Record))
			s.mu.Unlock()
			continue
		}
		batchKeys[w.Record.Key] = true
		results[i] = paas.InsertResult(s.Insert(ctx, w.Record))
		if s.is("batch-shared-write") && results[i].Err == nil {
			// The caller's record kept as it is: its slices are the caller's.
			s.mu.Lock()
			rec := w.Record
			rec.Seq = results[i].Seq
			s.recs[s.find(results[i].ID)] = rec
			s.mu.Unlock()
		}
	}
	return results
}
