package bolt_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
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

// BenchmarkUnfinished reads the unfinished tasks of a store: the cost of a restart. The
// small file holds 10,000 tasks, one in ten unfinished, a node after a run; the large one
// holds 1,000,000 unfinished tasks, a node restarted with a big backlog. The large file takes
// a few seconds to write, so it is written once per test binary (see backlogFile).
func BenchmarkUnfinished(b *testing.B) {
	for _, bc := range []struct {
		name          string
		tasks, finish int // finish: nine in ten tasks are completed if set
	}{
		{"10k_tasks_1k_unfinished", 10_000, 10},
		{"1M_tasks_all_unfinished", 1_000_000, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := b.Context()
			var s *bolt.Store
			want := bc.tasks
			if bc.finish == 0 {
				s = openT(b, backlogFile(b, bc.tasks), &bolt.Options{NoSync: true})
			} else {
				s = openT(b, tempPath(b), &bolt.Options{NoSync: true})
				writeTasks(b, s, bc.tasks, bc.finish)
				want = bc.tasks / bc.finish
			}
			for b.Loop() {
				recs, err := s.Unfinished(ctx)
				require.NoError(b, err)
				require.Len(b, recs, want)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(want), "ns/task")
		})
	}
}

// writeTasks inserts n tasks into s in batches; if finishEvery is not zero, all but one in
// finishEvery of them are then completed.
func writeTasks(b *testing.B, s *bolt.Store, n, finishEvery int) {
	const batch = 10_000
	for first := 0; first < n; first += batch {
		writes := make([]paas.Write, 0, 2*batch)
		for i := first; i < min(first+batch, n); i++ {
			rec := storetest.NewRecord(fmt.Sprint(i))
			writes = append(writes, paas.Write{Insert: true, Record: rec})
			if finishEvery != 0 && i%finishEvery != 0 {
				rec.State = paas.Completed
				writes = append(writes, paas.Write{Record: rec})
			}
		}
		for _, r := range s.WriteBatch(b.Context(), writes) {
			require.NoError(b, r.Err)
		}
	}
}

// backlogs holds the files of n unfinished tasks that backlogFile has written, by n, in a
// directory that TestMain removes.
var backlogs struct {
	sync.Mutex
	dir   string
	files map[int]string
}

// backlogFile returns the path of a file of n unfinished tasks, written on the first call for
// n. Benchmarks only read it: they must not change it.
func backlogFile(b *testing.B, n int) string {
	backlogs.Lock()
	defer backlogs.Unlock()
	if path, ok := backlogs.files[n]; ok {
		return path
	}
	if backlogs.dir == "" {
		dir, err := os.MkdirTemp("", "bolt-bench-")
		require.NoError(b, err)
		backlogs.dir, backlogs.files = dir, map[int]string{}
	}
	path := filepath.Join(backlogs.dir, fmt.Sprintf("backlog-%d.db", n))
	s, err := bolt.Open(path, &bolt.Options{NoSync: true})
	require.NoError(b, err)
	writeTasks(b, s, n, 0)
	require.NoError(b, s.Close())
	backlogs.files[n] = path
	return path
}

// removeBacklogs removes the files of backlogFile.
func removeBacklogs() error {
	if backlogs.dir == "" {
		return nil
	}
	return os.RemoveAll(backlogs.dir)
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
