package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
)

// mustWriteBatch runs WriteBatch and checks the one thing every call must satisfy: one result
// per write.
func mustWriteBatch(t *testing.T, ctx context.Context, s paas.BatchStore, writes []paas.Write) []paas.WriteResult {
	t.Helper()
	results := s.WriteBatch(ctx, writes)
	require.Len(t, results, len(writes), "WriteBatch must return one result per write")
	return results
}

func insertWrite(rec paas.TaskRecord) paas.Write { return paas.Write{Insert: true, Record: rec} }
func updateWrite(rec paas.TaskRecord) paas.Write { return paas.Write{Record: rec} }

func testWriteBatchMixed(t *testing.T, s paas.BatchStore) {
	ctx := t.Context()
	require.Empty(t, mustWriteBatch(t, ctx, s, nil), "an empty batch has no results")

	a := mustInsert(t, s, NewRecord("batch-a"))
	b, c := NewRecord("batch-b"), NewRecord("batch-c")

	aRunning := a
	aRunning.State = paas.InProgress
	aRunning.Attempts = 1
	aRunning.UpdatedAt = a.UpdatedAt.Add(time.Second)

	// b is updated in the batch that inserts it, without the Seq the store will give it: only
	// a store that applies the writes in order finds b, and it must keep b's Seq.
	bRunning := b
	bRunning.State = paas.InProgress
	bRunning.Attempts = 1
	bRunning.UpdatedAt = b.UpdatedAt.Add(time.Second)

	writes := []paas.Write{
		insertWrite(b),
		updateWrite(aRunning),
		insertWrite(c),
		updateWrite(bRunning),
		// A duplicate of a's key, after a's update: in order, it returns a as updated.
		insertWrite(NewRecord("batch-a")),
	}
	results := mustWriteBatch(t, ctx, s, writes)
	for i, r := range results {
		require.NoError(t, r.Err, "write %d", i)
	}

	gotB, gotC, gotDup := results[0], results[2], results[4]
	require.Equal(t, b.ID, gotB.ID, "an insert's result must name the task stored")
	require.Greater(t, gotB.Seq, a.Seq, "an insert in a batch must get a Seq greater than earlier tasks'")
	require.Equal(t, c.ID, gotC.ID)
	require.Greater(t, gotC.Seq, gotB.Seq, "inserts in a batch must get Seqs in the order of the writes")
	require.Equal(t, paas.WriteResult{ID: a.ID, Seq: a.Seq}, gotDup,
		"a duplicate insert must name the existing task, and give its Seq")

	for _, want := range []paas.TaskRecord{aRunning, withSeq(bRunning, gotB.Seq), withSeq(c, gotC.Seq)} {
		got, err := s.Get(ctx, want.ID)
		require.NoError(t, err)
		RequireRecordEqual(t, want, got, "Get after WriteBatch")
	}
	require.Equal(t, []paas.TaskID{a.ID, b.ID, c.ID}, mustUnfinishedIDs(t, s),
		"Unfinished after WriteBatch must hold every task once, in Seq order")

	// A final state written in a batch takes the task out of Unfinished, as Update does.
	aDone := aRunning
	aDone.State = paas.Completed
	results = mustWriteBatch(t, ctx, s, []paas.Write{updateWrite(aDone)})
	require.NoError(t, results[0].Err)
	require.Equal(t, []paas.TaskID{b.ID, c.ID}, mustUnfinishedIDs(t, s))
}

func testWriteBatchDuplicateKey(t *testing.T, s paas.BatchStore) {
	ctx := t.Context()
	first, second := NewRecord("batch-dup"), NewRecord("batch-dup")
	other := NewRecord("batch-other")
	results := mustWriteBatch(t, ctx, s, []paas.Write{insertWrite(first), insertWrite(other), insertWrite(second)})
	for i, r := range results {
		require.NoError(t, r.Err, "write %d: a duplicate key is not an error", i)
	}
	stored, err := s.Get(ctx, results[0].ID)
	require.NoError(t, err)
	RequireRecordEqual(t, withSeq(first, results[0].Seq), stored)
	require.Equal(t, results[0], results[2], "the second insert of a key in one batch must name the first's task")

	_, err = s.Get(ctx, second.ID)
	require.ErrorIs(t, err, paas.ErrTaskNotFound, "the second insert of a key in one batch must store nothing")
	require.Equal(t, []paas.TaskID{first.ID, other.ID}, mustUnfinishedIDs(t, s))
}

func testWriteBatchUnknownID(t *testing.T, s paas.BatchStore) {
	ctx := t.Context()
	existing := mustInsert(t, s, NewRecord("batch-existing"))
	before, unknown, after := NewRecord("batch-before"), NewRecord("batch-unknown"), NewRecord("batch-after")
	existingDone := existing
	existingDone.State = paas.Cancelled
	existingDone.UpdatedAt = existing.UpdatedAt.Add(time.Second)

	results := mustWriteBatch(t, ctx, s, []paas.Write{
		insertWrite(before),
		updateWrite(unknown),
		updateWrite(existingDone),
		insertWrite(after),
	})
	require.ErrorIs(t, results[1].Err, paas.ErrTaskNotFound, "the update of an unknown id must fail")
	for _, i := range []int{0, 2, 3} {
		require.NoError(t, results[i].Err, "write %d: the update of an unknown id must fail alone", i)
	}

	for _, rec := range []paas.TaskRecord{before, after} {
		_, err := s.Get(ctx, rec.ID)
		require.NoError(t, err, "the writes around a failed one must apply")
	}
	got, err := s.Get(ctx, existing.ID)
	require.NoError(t, err)
	RequireRecordEqual(t, existingDone, got, "the writes around a failed one must apply")

	_, err = s.Get(ctx, unknown.ID)
	require.ErrorIs(t, err, paas.ErrTaskNotFound, "the update of an unknown id must store nothing")
	require.Equal(t, []paas.TaskID{before.ID, after.ID}, mustUnfinishedIDs(t, s))
}

func testWriteBatchCancelledContext(t *testing.T, s paas.BatchStore) {
	existing := mustInsert(t, s, NewRecord("existing"))
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()

	fresh := NewRecord("cancelled batch insert")
	changed := existing
	changed.State = paas.Cancelled
	changed.UpdatedAt = existing.UpdatedAt.Add(time.Second)
	results := mustWriteBatch(t, cancelled, s, []paas.Write{
		insertWrite(fresh),
		updateWrite(changed),
		insertWrite(NewRecord("existing")),
	})
	for i, r := range results {
		require.ErrorIs(t, r.Err, context.Canceled, "write %d: a cancelled context must fail every write", i)
	}

	_, err := s.Get(t.Context(), fresh.ID)
	require.ErrorIs(t, err, paas.ErrTaskNotFound, "a batch with a cancelled context must store nothing")
	got, err := s.Get(t.Context(), existing.ID)
	require.NoError(t, err)
	RequireRecordEqual(t, existing, got, "a batch with a cancelled context must change nothing")
	// Nor may it have taken the key.
	inserted, err := s.Insert(t.Context(), fresh)
	require.NoError(t, err)
	require.Equal(t, fresh.ID, inserted.ID, "a batch with a cancelled context must not take a key")
}

func testWriteBatchNoSharedMemory(t *testing.T, s paas.BatchStore) {
	ctx := t.Context()
	requireIntact := func(want paas.TaskRecord) {
		t.Helper()
		got, err := s.Get(ctx, want.ID)
		require.NoError(t, err)
		requireSlicesEqual(t, want, got)
	}

	orig := mustInsert(t, s, NewRecord("batch original"))
	update := withAllFields(orig, 1)
	update.State = paas.InProgress
	update.Program = []byte("batch original")
	inserted := withAllFields(NewRecord("batch inserted"), 2)
	wantUpdate, wantInserted := update.Clone(), inserted.Clone()
	writes := []paas.Write{
		insertWrite(inserted),
		updateWrite(update),
		insertWrite(NewRecord("batch original")), // a duplicate: its result is the stored record
	}
	results := mustWriteBatch(t, ctx, s, writes)
	for i, r := range results {
		require.NoError(t, r.Err, "write %d", i)
	}
	require.Equal(t, orig.ID, results[2].ID)

	// Scribble on everything the caller passed.
	for _, w := range writes {
		scribble(w.Record)
	}
	requireIntact(wantInserted)
	requireIntact(wantUpdate)
}
