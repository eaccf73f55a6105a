//go:build unix

package bolt_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas/store/bolt"
)

// readOnlyDirEnv, when set, names a directory that TestOpenReadOnlyDir must fail to open a
// store in. The test sets it for a copy of itself that it runs as an unprivileged user.
const readOnlyDirEnv = "BOLT_TEST_READONLY_DIR"

// readOnlyMarker is logged by the child once it has seen Open fail as it should, so that the
// parent can tell a pass from a skip or a test that never ran.
const readOnlyMarker = "open in a read-only directory failed as expected"

// unprivileged is the nobody user, which no permission bit can be waived for.
const unprivileged = 65534

func TestOpenReadOnlyDir(t *testing.T) {
	if dir := os.Getenv(readOnlyDirEnv); dir != "" {
		requireOpenFailsIn(t, dir)
		t.Log(readOnlyMarker)
		return
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(t.TempDir(), "ro")
		require.NoError(t, os.Mkdir(ro, 0o755))
		require.NoError(t, os.Chmod(ro, 0o555))
		t.Cleanup(func() { _ = os.Chmod(ro, 0o755) }) // so that t.TempDir can remove it
		requireOpenFailsIn(t, ro)
		return
	}

	// Root writes through any permission bits, so the check must run as another user: a copy
	// of this test binary, in a directory that user can reach (t.TempDir is in a 0700
	// directory of root's).
	base, err := os.MkdirTemp("", "bolt-readonly-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	require.NoError(t, os.Chmod(base, 0o755))
	ro := filepath.Join(base, "ro")
	require.NoError(t, os.Mkdir(ro, 0o755))
	require.NoError(t, os.Chmod(ro, 0o555))
	bin := filepath.Join(base, "bolt.test")
	copyExecutable(t, bin)

	cmd := exec.CommandContext(t.Context(), bin, "-test.run=^TestOpenReadOnlyDir$", "-test.v", "-test.count=1")
	cmd.Dir = base
	cmd.Env = append(os.Environ(), readOnlyDirEnv+"="+ro)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: unprivileged, Gid: unprivileged}}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the unprivileged child failed:\n%s", out)
	require.Contains(t, string(out), readOnlyMarker, "the child did not run the check:\n%s", out)
	entries, err := os.ReadDir(ro)
	require.NoError(t, err)
	require.Empty(t, entries, "Open must create nothing in a read-only directory")
}

func requireOpenFailsIn(t *testing.T, dir string) {
	t.Helper()
	path := filepath.Join(dir, "tasks.db")
	s, err := bolt.Open(path, &bolt.Options{LockTimeout: 100 * time.Millisecond})
	if err == nil {
		_ = s.Close()
	}
	require.Error(t, err, "Open in the read-only directory %s must fail", dir)
	require.ErrorIs(t, err, fs.ErrPermission)
	require.ErrorContains(t, err, path, "the error must name the path")
	require.NotErrorIs(t, err, bolt.ErrLocked)
	require.True(t, strings.Contains(err.Error(), "permission"), "the error must say why: %v", err)
	t.Log(err)
}

// copyExecutable copies the running test binary to dst, executable by everyone.
func copyExecutable(t *testing.T, dst string) {
	t.Helper()
	src, err := os.Executable()
	require.NoError(t, err)
	in, err := os.Open(src)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, errors.Join(err, out.Close()))
	require.NoError(t, os.Chmod(dst, 0o755)) // the umask may have taken bits off
}
