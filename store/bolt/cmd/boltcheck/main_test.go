package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas/store/bolt"
	"github.com/zkpaas/paas/store/storetest"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tasks.db")
	s, err := bolt.Open(path, &bolt.Options{NoSync: true})
	require.NoError(t, err)
	_, err = s.Insert(t.Context(), storetest.NewRecord("a"))
	require.NoError(t, err)
	require.NoError(t, s.Close())

	var out, errOut bytes.Buffer
	require.Equal(t, sound, run([]string{path}, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "sound")

	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, raw[:len(raw)/4], 0o600))
	out.Reset()
	require.Equal(t, damaged, run([]string{path}, &out, &errOut))
	require.Contains(t, out.String(), "DAMAGED")
	require.Contains(t, out.String(), "cut short")

	require.Equal(t, usage, run(nil, &out, &errOut))
	require.Equal(t, usage, run([]string{"a", "b"}, &out, &errOut))
	require.Equal(t, uncheck, run([]string{filepath.Join(dir, "missing.db")}, &out, &errOut))
}
