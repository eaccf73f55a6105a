package service

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
)

// The queue gives the tasks in the order of a sorted list, whatever the mix of pushes in
// order, pushes out of order (retries), priorities beyond the runs, cancels and pops.
func TestQueueOrdersLikeASortedList(t *testing.T) {
	for _, priorities := range []int{1, 3, maxRuns + 4} {
		rng := rand.New(rand.NewPCG(uint64(priorities), 7))
		var q taskQueue
		var want []*task // the queued tasks, in the order they must come out
		var seq uint64
		used := map[uint64]bool{}
		less := func(a, b *task) int {
			if entryOf(a).before(entryOf(b)) {
				return -1
			}
			return 1
		}
		for step := range 20000 {
			switch r := rng.IntN(10); {
			case r < 5: // a new task
				seq += 2 // odd numbers are left for retries
				tk := &task{rec: cached{ID: paas.NewTaskID(), Seq: seq, Priority: rng.IntN(priorities)}}
				q.push(tk)
				want = append(want, tk)
			case r < 6 && seq > 0: // a retry: an older task back (Seqs are unique)
				old := rng.Uint64N(seq)/2*2 + 1
				if used[old] {
					continue
				}
				used[old] = true
				tk := &task{rec: cached{ID: paas.NewTaskID(), Seq: old, Priority: rng.IntN(priorities)}}
				q.push(tk)
				want = append(want, tk)
			case r < 7 && len(want) > 0: // a cancel
				i := rng.IntN(len(want))
				want[i].queued = false
				want = slices.Delete(want, i, i+1)
			default:
				slices.SortStableFunc(want, less)
				got := q.pop()
				if len(want) == 0 {
					require.Nil(t, got, "step %d", step)
					continue
				}
				require.Same(t, want[0], got, "step %d: priorities %d", step, priorities)
				require.False(t, got.queued)
				want = want[1:]
			}
		}
		slices.SortStableFunc(want, less)
		for _, w := range want {
			require.Same(t, w, q.pop())
		}
		require.Nil(t, q.pop())
		require.Nil(t, q.peek())
	}
}

// A run that never empties keeps to the size of its backlog: the space of the tasks popped
// is reused.
func TestQueueRunReusesTheSpaceOfPoppedTasks(t *testing.T) {
	var q taskQueue
	var seq uint64
	for range 100 {
		seq++
		q.push(&task{rec: cached{Seq: seq}})
	}
	for range 100000 {
		seq++
		q.push(&task{rec: cached{Seq: seq}})
		require.NotNil(t, q.pop())
	}
	require.Len(t, q.runs, 1)
	require.Less(t, cap(q.runs[0].tasks), 4096)
	require.Empty(t, q.heap)
}
