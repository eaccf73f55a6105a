// Package storetest is a conformance suite for implementations of paas.TaskStore.
//
// The TaskStore doc comments state a contract; this package states the same contract as tests,
// so that every store is held to it in the same way. A store author calls Run from an ordinary
// test in the store's package:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) paas.TaskStore {
//			db := openTestDatabase(t) // clean it up with t.Cleanup
//			return mystore.New(db)
//		})
//	}
//
// If the store also implements paas.BatchStore, Run checks WriteBatch too: the subtests named
// "WriteBatch..." are skipped for stores that do not.
//
// Run calls newStore once per subtest and expects an empty store each time; it never closes
// the store, so register any cleanup with t.Cleanup inside newStore. The subtests run one after
// the other, never in parallel, so stores backed by a single shared resource only need to empty
// it between calls. A failing subtest is named after the clause of the contract it checks, e.g.
// "TestConformance/UpdateKeepsIdentity"; run just that one with go test -run.
//
// Where the doc comments leave a detail implicit, the suite settles it the way the service
// relies on it: Seq is never zero (zero means unassigned), a Seq passed to Insert is ignored,
// an Update that passes zero values (an empty LastError, a zero NextAttemptAt) stores them, and
// an Update never moves a task's key or its place in Seq order.
//
// The suite builds its records with NewRecord, whose times are in UTC and truncated to the
// microsecond, so that stores that keep times at microsecond precision (PostgreSQL, for one)
// pass. Times are compared with time.Time.Equal: a store may return them in another location
// and without the monotonic clock reading.
//
// Records round-trip whole: every field of paas.TaskRecord, including DependsOn, Checkpoint and
// the other fields that NewRecord leaves zero, must come back as it went in, through Insert,
// Update, Get, Unfinished and WriteBatch; an empty DependsOn or Checkpoint may come back nil.
// Prune is held to its doc comment: it deletes exactly the final tasks last updated strictly
// before its argument that no unfinished task depends on, frees their keys, and leaves Seq
// increasing past them. An update whose Version is not zero is fenced (see
// paas.TaskRecord.Version); the other tests leave Version zero.
//
// For tests of code that uses a store, Faulty wraps any TaskStore and fails the inserts, updates,
// batches or prunes it is told to.
//
// The suite is split by operation, as the contract is: insert.go, update.go, read.go,
// batch.go, prune.go, fence.go (fenced updates) and fields.go (every field round-trips);
// storetest.go holds Run, NewRecord and the helpers; faulty.go holds Faulty.
package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/internal/taskrec"
)

// NewRecord returns a valid new task record for program, as the service would hand it to
// TaskStore.Insert: Pending, with a fresh ID, the key paas.KeyOf("test", program,
// paas.BackendNative), weight 1, and CreatedAt and UpdatedAt set to now in UTC, truncated to the
// microsecond. Seq is zero, for the store to assign, and so are Priority, DependsOn, Timeout,
// Restarts, Checkpoint, FailedDependency and WaitingSince, as for a task submitted without
// options. Records built from the same program share a key, so inserting a second one exercises
// deduplication.
func NewRecord(program string) paas.TaskRecord {
	return taskrec.New("test", []byte(program), paas.BackendNative, time.Now().UTC().Truncate(time.Microsecond))
}

// Run runs the conformance suite against the stores that newStore returns. Each subtest calls
// newStore for a store of its own, which must start empty.
func Run(t *testing.T, newStore func(t *testing.T) paas.TaskStore) {
	t.Helper()

	tests := []struct {
		name string
		fn   func(t *testing.T, s paas.TaskStore)
	}{
		{"Insert", testInsert},
		{"InsertIgnoresCallerSeq", testInsertIgnoresCallerSeq},
		{"SeqIncreases", testSeqIncreases},
		{"InsertDuplicateKey", testInsertDuplicateKey},
		{"InsertDuplicateKeyConcurrent", testInsertDuplicateKeyConcurrent},
		{"InsertConcurrent", testInsertConcurrent},
		{"Update", testUpdate},
		{"UpdateClearsFields", testUpdateClearsFields},
		{"UpdateKeepsIdentity", testUpdateKeepsIdentity},
		{"UpdateUnknownID", testUpdateUnknownID},
		{"GetUnknownID", testGetUnknownID},
		{"Unfinished", testUnfinished},
		{"UnfinishedEmpty", testUnfinishedEmpty},
		{"NoSharedMemory", testNoSharedMemory},
		{"TimesRoundTrip", testTimesRoundTrip},
		{"CancelledContext", testCancelledContext},
		{"AllFieldsRoundTrip", testAllFieldsRoundTrip},
		{"BlockedIsUnfinished", testBlockedIsUnfinished},
		{"Prune", testPrune},
		{"PruneForgetsKey", testPruneForgetsKey},
		{"PruneEmpty", testPruneEmpty},
		{"PruneCancelledContext", testPruneCancelledContext},
		{"PruneConcurrentInsert", testPruneConcurrentInsert},
		{"PruneKeepsDependencies", testPruneKeepsDependencies},
		{"UpdateFenced", testUpdateFenced},
		{"GetByKey", testGetByKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			require.NotNil(t, s, "newStore returned nil")
			tt.fn(t, s)
		})
	}

	// The batch clauses apply only to stores that offer group commit; the others skip them,
	// so that one suite serves both kinds.
	batchTests := []struct {
		name string
		fn   func(t *testing.T, s paas.BatchStore)
	}{
		{"WriteBatchMixed", testWriteBatchMixed},
		{"WriteBatchDuplicateKey", testWriteBatchDuplicateKey},
		{"WriteBatchUnknownID", testWriteBatchUnknownID},
		{"WriteBatchCancelledContext", testWriteBatchCancelledContext},
		{"WriteBatchNoSharedMemory", testWriteBatchNoSharedMemory},
		{"WriteBatchAllFields", testWriteBatchAllFields},
		{"WriteBatchFenced", testWriteBatchFenced},
	}
	for _, tt := range batchTests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			require.NotNil(t, s, "newStore returned nil")
			bs, ok := s.(paas.BatchStore)
			if !ok {
				t.Skip("the store does not implement paas.BatchStore")
			}
			tt.fn(t, bs)
		})
	}
}

func testCancelledContext(t *testing.T, s paas.TaskStore) {
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()

	existing := mustInsert(t, s, NewRecord("existing"))

	t.Run("Insert", func(t *testing.T) {
		rec := NewRecord("cancelled insert")
		_, err := s.Insert(cancelled, rec)
		require.ErrorIs(t, err, context.Canceled)

		_, err = s.Get(t.Context(), rec.ID)
		require.ErrorIs(t, err, paas.ErrTaskNotFound, "Insert with a cancelled context must store nothing")
		// Nor may it have taken the key.
		got, err := s.Insert(t.Context(), rec)
		require.NoError(t, err)
		require.Equal(t, rec.ID, got.ID, "Insert with a cancelled context must not take the key")
	})
	t.Run("InsertDuplicate", func(t *testing.T) {
		_, err := s.Insert(cancelled, NewRecord("existing"))
		require.ErrorIs(t, err, context.Canceled)
	})
	t.Run("Update", func(t *testing.T) {
		rec := existing
		rec.State = paas.Cancelled
		rec.UpdatedAt = rec.UpdatedAt.Add(time.Second)
		err := s.Update(cancelled, rec)
		require.ErrorIs(t, err, context.Canceled)

		got, err := s.Get(t.Context(), existing.ID)
		require.NoError(t, err)
		RequireRecordEqual(t, existing, got, "Update with a cancelled context must change nothing")
	})
	t.Run("Get", func(t *testing.T) {
		_, err := s.Get(cancelled, existing.ID)
		require.ErrorIs(t, err, context.Canceled)
	})
	t.Run("Unfinished", func(t *testing.T) {
		_, err := s.Unfinished(cancelled)
		require.ErrorIs(t, err, context.Canceled)
	})
}

// RequireRecordEqual fails t unless got has the fields of want, with times compared by
// time.Time.Equal (a store may drop the location and monotonic reading) and a nil Program,
// DependsOn or Checkpoint equal to an empty one. Store authors use it in their own tests.
func RequireRecordEqual(t *testing.T, want, got paas.TaskRecord, msgAndArgs ...any) {
	t.Helper()
	for _, f := range []struct {
		name      string
		want, got time.Time
	}{
		{"NextAttemptAt", want.NextAttemptAt, got.NextAttemptAt},
		{"WaitingSince", want.WaitingSince, got.WaitingSince},
		{"CreatedAt", want.CreatedAt, got.CreatedAt},
		{"UpdatedAt", want.UpdatedAt, got.UpdatedAt},
	} {
		if !f.want.Equal(f.got) || f.want.IsZero() != f.got.IsZero() {
			require.Fail(t, fmt.Sprintf("%s differs: want %v, got %v", f.name, f.want, f.got), msgAndArgs...)
		}
	}
	require.Equal(t, withoutTimes(want), withoutTimes(got), msgAndArgs...)
}

// withoutTimes returns r with the fields that require.Equal cannot compare faithfully cleared:
// equal times may differ in location and monotonic reading, and a store may return a nil
// Program, DependsOn or Checkpoint for an empty one.
func withoutTimes(r paas.TaskRecord) paas.TaskRecord {
	r.NextAttemptAt, r.WaitingSince, r.CreatedAt, r.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if len(r.Program) == 0 {
		r.Program = nil
	}
	if len(r.DependsOn) == 0 {
		r.DependsOn = nil
	}
	if len(r.Checkpoint) == 0 {
		r.Checkpoint = nil
	}
	return r
}

func requireSeqOrder(t *testing.T, recs []paas.TaskRecord) {
	t.Helper()
	for i := 1; i < len(recs); i++ {
		require.Less(t, recs[i-1].Seq, recs[i].Seq, "records %d and %d are not in strictly increasing Seq order", i-1, i)
	}
}

func mustInsert(t *testing.T, s paas.TaskStore, rec paas.TaskRecord) paas.TaskRecord {
	t.Helper()
	got, err := s.Insert(t.Context(), rec)
	require.NoError(t, err)
	return got
}

func mustUnfinishedIDs(t *testing.T, s paas.TaskStore) []paas.TaskID {
	t.Helper()
	recs, err := s.Unfinished(t.Context())
	require.NoError(t, err)
	return recordIDs(recs)
}

func recordIDs(recs []paas.TaskRecord) []paas.TaskID {
	ids := make([]paas.TaskID, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	return ids
}

func withSeq(r paas.TaskRecord, seq uint64) paas.TaskRecord {
	r.Seq = seq
	return r
}
