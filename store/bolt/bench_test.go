package bolt_test

import (
	"fmt"
	"os"
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

// openBenchFile writes a store of n tasks, nine in ten of them completed with a proof of a
// few hundred bytes, the programs of 100 to 300 bytes: a node after a long run.
func openBenchFile(b *testing.B, n int) string {
	ctx := b.Context()
	path := tempPath(b)
	s, err := bolt.Open(path, &bolt.Options{NoSync: true})
	require.NoError(b, err)
	const batch = 1000
	for i := 0; i < n; i += batch {
		writes := make([]paas.Write, 0, 2*batch)
		for j := i; j < min(i+batch, n); j++ {
			rec := storetest.NewRecord(fmt.Sprintf("%0*d", 100+j%200, j))
			writes = append(writes, paas.Write{Insert: true, Record: rec})
			if j%10 != 0 {
				rec.State = paas.Completed
				writes = append(writes, paas.Write{Record: rec})
			}
		}
		for _, r := range s.WriteBatch(ctx, writes) {
			require.NoError(b, r.Err)
		}
		for _, w := range writes {
			if w.Record.State == paas.Completed {
				proof := paas.Proof{Backend: paas.BackendNative, Receipt: make([]byte, 300), PublicValues: []byte("55")}
				require.NoError(b, s.StoreProof(ctx, w.Record.ID, proof))
			}
		}
	}
	require.NoError(b, s.Close())
	return path
}

// BenchmarkOpen100k opens and closes a store of 100,000 tasks and 90,000 proofs: the cost of
// a restart before Unfinished, with the check of the file's structure that Open makes.
func BenchmarkOpen100k(b *testing.B) {
	path := openBenchFile(b, 100_000)
	for b.Loop() {
		s, err := bolt.Open(path, &bolt.Options{NoSync: true})
		require.NoError(b, err)
		require.NoError(b, s.Close())
	}
	info, err := os.Stat(path)
	require.NoError(b, err)
	b.ReportMetric(float64(info.Size())/(1<<20), "MiB")
}

// BenchmarkCheckStructure100k is the check of the file's structure alone, of the file of
// BenchmarkOpen100k: what it adds to Open.
func BenchmarkCheckStructure100k(b *testing.B) {
	path := openBenchFile(b, 100_000)
	for b.Loop() {
		require.NoError(b, bolt.CheckStructure(path))
	}
}

// BenchmarkCheck100k is the offline Check of the file of BenchmarkOpen100k.
func BenchmarkCheck100k(b *testing.B) {
	path := openBenchFile(b, 100_000)
	for b.Loop() {
		require.NoError(b, bolt.Check(path))
	}
}
