package bolt_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/store/bolt"
	"github.com/zkpaas/paas/store/storetest"
)

// BenchmarkSingleCommit inserts one task per transaction, with the fsync of every commit: the
// cost of a store without group commit, and so the rate that caps Submit without it.
func BenchmarkSingleCommit(b *testing.B) {
	ctx := b.Context()
	s := openT(b, tempPath(b), nil)
	n := 0
	for b.Loop() {
		_, err := s.Insert(ctx, storetest.NewRecord(fmt.Sprint(n)))
		require.NoError(b, err)
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "commits/s")
}

// BenchmarkWriteBatch64 inserts 64 tasks per transaction, fsync on: what group commit buys.
func BenchmarkWriteBatch64(b *testing.B) {
	const batch = 64
	ctx := b.Context()
	s := openT(b, tempPath(b), nil)
	writes := make([]paas.Write, batch)
	n := 0
	for b.Loop() {
		for i := range writes {
			writes[i] = paas.Write{Insert: true, Record: storetest.NewRecord(fmt.Sprint(n))}
			n++
		}
		for i, r := range s.WriteBatch(ctx, writes) {
			require.NoError(b, r.Err, "write %d", i)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "inserts/s")
}

// BenchmarkUnfinished reads 1,000 unfinished tasks out of 10,000: the cost of a restart.
func BenchmarkUnfinished(b *testing.B) {
	ctx := b.Context()
	s := openT(b, tempPath(b), &bolt.Options{NoSync: true})
	writes := make([]paas.Write, 0, 10_000)
	for i := range cap(writes) {
		rec := storetest.NewRecord(fmt.Sprint(i))
		writes = append(writes, paas.Write{Insert: true, Record: rec})
		if i%10 != 0 {
			rec.State = paas.Completed
			writes = append(writes, paas.Write{Record: rec})
		}
	}
	for _, r := range s.WriteBatch(ctx, writes) {
		require.NoError(b, r.Err)
	}
	for b.Loop() {
		recs, err := s.Unfinished(ctx)
		require.NoError(b, err)
		require.Len(b, recs, 1_000)
	}
}
