package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/service"
	"github.com/zkpaas/paas/store/bolt"
)

// While the store fails, Submit returns its error at once, Status and Summary answer, and the
// updates of running tasks wait to be written again; once the store recovers, every task
// proceeds and nothing acknowledged is lost.
func TestFailingStoreNeverHangsACallerAndLosesNothing(t *testing.T) {
	f, fs, inner := faulty(t)
	id := f.submit("running")
	a := f.gate.next(t)

	full := errors.New("no space left on device")
	fs.FailBatches(1_000_000, full)
	a.answer <- nil                                     // its outcome cannot be written now
	require.NoError(t, f.clock.WaitForTimers(f.ctx, 1)) // the update waits to be written again
	for range 5 {
		ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
		_, err := f.h.Submit(ctx, job{Name: "new"}, paas.BackendNative)
		cancel()
		require.ErrorIs(t, err, full, "Submit must return the store's error, not wait behind the failing update")
	}
	assert.Equal(t, paas.InProgress, f.status(id).State, "Status answers, with what is stored")
	assert.Equal(t, paas.StatusSummary{InProgress: 1}, f.summary(), "Summary answers")
	f.clock.Advance(time.Second) // the update is tried again, and fails again: backing off
	require.NoError(t, f.clock.WaitForTimers(f.ctx, 1))
	assert.Equal(t, paas.InProgress, f.status(id).State)

	fs.FailBatches(0, nil) // space is back
	f.clock.Advance(time.Minute)
	assert.Equal(t, paas.Completed, f.wait(id).State)
	later := f.submit("new")
	f.gate.next(t).answer <- nil
	assert.Equal(t, paas.Completed, f.wait(later).State)
	for _, id := range []paas.TaskID{id, later} {
		rec, err := inner.Get(f.ctx, id)
		require.NoError(t, err)
		assert.Equal(t, paas.Completed, rec.State)
	}
}

// smallDisk mounts a tmpfs of size bytes on a new directory and returns its path; it is
// unmounted when the test ends. Mounting needs root, as CI runs.
func smallDisk(t testing.TB, size string) string {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		if os.Geteuid() != 0 {
			t.Skipf("mounting a small tmpfs needs root: %v", err)
		}
		t.Fatalf("mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes a file in dir until the disk is full, and returns a func that deletes it.
func fill(t testing.TB, dir string) (free func()) {
	path := filepath.Join(dir, "filler")
	file, err := os.Create(path)
	require.NoError(t, err)
	chunk := bytes.Repeat([]byte{0xaa}, 4096)
	for {
		if _, err := file.Write(chunk); err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC)
			break
		}
	}
	require.NoError(t, file.Close())
	return func() { require.NoError(t, os.Remove(path)) }
}

// A real full disk: the bolt file on a 2 MiB tmpfs that fills up.
func TestFullDiskFailsSubmitsAtOnceAndRecoversWithNothingLost(t *testing.T) {
	dir := smallDisk(t, "2m")
	path := filepath.Join(dir, "paas.db")
	store := openBolt(t, path)
	f := startOn(t, store)
	id := f.submit("running")
	a := f.gate.next(t)
	free := fill(t, dir)

	// bbolt reuses the free pages of its file first; the disk is full once it must grow it.
	var (
		acked   = []paas.TaskID{id}
		failure error
		padding = strings.Repeat("p", 16<<10)
	)
	for i := 0; failure == nil; i++ {
		require.Less(t, i, 10_000, "the disk never filled")
		ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
		got, err := f.h.Submit(ctx, job{Name: padding + string(rune('a'+i%26)) + strings.Repeat("x", i)}, paas.BackendNative)
		cancel()
		if err != nil {
			failure = err
			break
		}
		acked = append(acked, got)
	}
	require.ErrorIs(t, failure, syscall.ENOSPC, "Submit must fail with the disk's error, not hang")
	// Small tasks may still fit in what is left of the file's free pages: use them up too.
	for i := 0; ; i++ {
		require.Less(t, i, 10_000, "the free pages never ran out")
		ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
		got, err := f.h.Submit(ctx, job{Name: fmt.Sprint("small ", i)}, paas.BackendNative)
		cancel()
		if err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC, "every Submit fails at once while the disk is full")
			break
		}
		acked = append(acked, got)
	}
	// An outcome to store on the full disk, too large for what is left: a transient failure
	// with a long error, which the update of the task must record.
	a.answer <- errors.New(strings.Repeat("e", 16<<10))
	require.NoError(t, f.clock.WaitForTimers(f.ctx, 1)) // the update failed, and waits to be written again
	require.NotEmpty(t, f.logs.FilterMessage("task updates failed; writing them again").All())
	st, err := f.h.Status(f.ctx, id)
	require.NoError(t, err, "Status answers")
	assert.Equal(t, paas.InProgress, st.State, "what is stored, until the outcome is")
	_, err = f.h.Summary(f.ctx)
	require.NoError(t, err, "Summary answers")

	free()
	// The failed updates are due again, and the retry that one of them records.
	f.clock.Advance(time.Minute)
	remaining := make(map[paas.TaskID]bool)
	for _, id := range acked {
		remaining[id] = true
	}
	for len(remaining) > 0 {
		a := f.gate.next(t)
		require.True(t, remaining[a.task.ID], "only acknowledged tasks run, each until it completes")
		a.answer <- nil
		require.Equal(t, paas.Completed, f.wait(a.task.ID).State)
		delete(remaining, a.task.ID)
	}
	assert.Equal(t, 2, f.status(id).Attempts, "the outcome of its first attempt was stored once space returned")
	after := f.submit("after")
	f.gate.next(t).answer <- nil
	f.wait(after)
	require.NoError(t, f.svc.Stop(f.ctx))
	require.NoError(t, store.Close())

	reopened, err := bolt.Open(path, nil)
	require.NoError(t, err)
	defer reopened.Close()
	for _, id := range append(acked, after) {
		rec, err := reopened.Get(context.Background(), id)
		require.NoError(t, err, "an acknowledged task is in the file")
		assert.Equal(t, paas.Completed, rec.State)
	}
	t.Logf("%d tasks acknowledged before the disk filled; all completed once space returned", len(acked))
}

// BenchmarkFailOnAFullDisk is how long a Submit takes to fail once the disk of the bolt file
// is full: a 2 MiB tmpfs, filled up. It needs root, to mount the tmpfs.
//
//	go test -run '^$' -bench FailOnAFullDisk -benchtime 2000x -count 5 ./service
func BenchmarkFailOnAFullDisk(b *testing.B) {
	dir := smallDisk(b, "2m")
	store, err := bolt.Open(filepath.Join(dir, "paas.db"), nil)
	require.NoError(b, err)
	defer store.Close()
	idle := handler.ProofHandlerFunc(func(context.Context, paas.Task) error { return nil })
	svc, err := service.New(paas.Config{Workers: map[paas.Backend]int64{paas.BackendNative: 1}}, store,
		map[paas.RoutingKey]handler.ProofHandler{"job": idle})
	require.NoError(b, err)
	ctx := context.Background()
	require.NoError(b, svc.Start(ctx))
	defer svc.Stop(ctx)
	defer fill(b, dir)()
	h := svc.Handle()
	padding := strings.Repeat("p", 16<<10)
	for i := 0; ; i++ { // until bbolt has used up the free pages of its file
		if _, err := h.Submit(ctx, job{Name: fmt.Sprint(padding, i)}, paas.BackendNative); err != nil {
			require.ErrorIs(b, err, syscall.ENOSPC)
			break
		}
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := h.Submit(ctx, job{Name: fmt.Sprint(padding, "full", i)}, paas.BackendNative); !errors.Is(err, syscall.ENOSPC) {
			b.Fatalf("Submit on a full disk: %v", err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/failed-submit")
}
