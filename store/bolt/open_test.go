package bolt_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/store/bolt"
	"github.com/zkpaas/paas/store/storetest"
)

func TestReopenPersists(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	s, err := bolt.Open(path, nil) // the default, syncing options: this is the durability test
	require.NoError(t, err)

	a, err := s.Insert(ctx, storetest.NewRecord("a"))
	require.NoError(t, err)
	b, err := s.Insert(ctx, storetest.NewRecord("b"))
	require.NoError(t, err)
	c := storetest.NewRecord("c")
	a.State, a.Attempts, a.LastError = paas.Retrying, 1, "busy"
	a.NextAttemptAt = a.UpdatedAt.Add(time.Minute)
	b.State = paas.Completed
	results := s.WriteBatch(ctx, []paas.Write{{Insert: true, Record: c}, {Record: a}, {Record: b}})
	for i, r := range results {
		require.NoError(t, r.Err, "write %d", i)
	}
	c.Seq = results[0].Seq
	proof := paas.Proof{Backend: paas.BackendSP1, Receipt: []byte("receipt"), PublicValues: []byte("55")}
	require.NoError(t, s.StoreProof(ctx, b.ID, proof))
	require.NoError(t, s.Close())

	s = openT(t, path, nil)
	for _, want := range []paas.TaskRecord{a, b, c} {
		got, err := s.Get(ctx, want.ID)
		require.NoError(t, err)
		storetest.RequireRecordEqual(t, want, got)
	}
	unfinished, err := s.Unfinished(ctx)
	require.NoError(t, err)
	require.Equal(t, []paas.TaskID{a.ID, c.ID}, ids(unfinished))
	gotProof, err := s.Proof(ctx, b.ID)
	require.NoError(t, err)
	require.Equal(t, proof, gotProof)

	dup, err := s.Insert(ctx, storetest.NewRecord("b"))
	require.NoError(t, err)
	require.Equal(t, b.ID, dup.ID, "the key index must survive a reopen")
	d, err := s.Insert(ctx, storetest.NewRecord("d"))
	require.NoError(t, err)
	require.Greater(t, d.Seq, c.Seq, "Seq must keep increasing across a reopen")
}

func TestOpenLocked(t *testing.T) {
	path := tempPath(t)
	first := openT(t, path, fast)

	for name, opts := range map[string]*bolt.Options{
		"default": nil,
		"short":   {LockTimeout: 50 * time.Millisecond},
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			s, err := bolt.Open(path, opts)
			elapsed := time.Since(start)
			if err == nil {
				_ = s.Close()
			}
			require.ErrorIs(t, err, bolt.ErrLocked)
			require.ErrorContains(t, err, "in use by another process")
			require.ErrorContains(t, err, path)
			require.Less(t, elapsed, 5*time.Second, "a locked file must fail fast, not hang")
		})
	}

	// The first store is unharmed, and its Close releases the lock.
	_, err := first.Insert(t.Context(), storetest.NewRecord("still works"))
	require.NoError(t, err)
	require.NoError(t, first.Close())
	openT(t, path, &bolt.Options{LockTimeout: 50 * time.Millisecond, NoSync: true})
}

func TestOpenBadPaths(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "not-a-db")
	require.NoError(t, os.WriteFile(notDB, []byte("this is not a bbolt file, but it is long enough to be read as one?"), 0o600))

	for name, path := range map[string]string{
		"MissingParent": filepath.Join(dir, "no", "such", "dir", "tasks.db"),
		"Directory":     dir,
		"NotABoltFile":  notDB,
	} {
		t.Run(name, func(t *testing.T) {
			s, err := bolt.Open(path, &bolt.Options{LockTimeout: 50 * time.Millisecond})
			if err == nil {
				_ = s.Close()
			}
			require.Error(t, err)
			require.ErrorContains(t, err, path, "the error must name the path")
			require.NotErrorIs(t, err, bolt.ErrLocked)
			t.Log(err)
		})
	}
	_, err := os.Stat(filepath.Join(dir, "no"))
	require.ErrorIs(t, err, fs.ErrNotExist, "Open must not create directories")
}

func TestMissingParentError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "tasks.db")
	_, err := bolt.Open(path, nil)
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.ErrorContains(t, err, "directory does not exist")
}
