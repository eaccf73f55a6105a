package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/store/bolt"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// programs are the rows of the table, by program, with their state, attempts, public value and
// receipt. fib(13) needs a retry: its first input fetch fails.
var programs = []struct{ program, rest string }{
	{`fib(10) on native`, `completed +1 +55 +-`},
	{`fib(13) on native`, `completed +2 +233 +-`},
	{`fib(50) on native`, `completed +1 +12586269025 +-`},
	{`fib(90) on native`, `completed +1 +2880067194370816120 +-`},
	{`fib(10) on sp1`, `completed +1 +55 +sha256:[0-9a-f]{12}\.\.\.`},
	{`fib(20) on sp1`, `completed +1 +6765 +sha256:[0-9a-f]{12}\.\.\.`},
}

// assertTable checks that every program has its row in out, proven as given ("now" or
// "earlier run").
func assertTable(t *testing.T, out, proven string) {
	t.Helper()
	assert.Regexp(t, `fib\(10\) on native again is the same task [0-9a-f]{8}\n`, out)
	assert.Contains(t, out, "PROVEN\n")
	for _, p := range programs {
		row := `(?m)^[0-9a-f]{8} +` + regexp.QuoteMeta(p.program) + ` +` + p.rest + ` +` + proven + `$`
		assert.Regexp(t, regexp.MustCompile(row), out)
	}
}

// row is a row of the table, its columns split apart.
type row struct{ task, state, attempts, value, receipt, proven string }

// parseTable returns the rows of the table in out by program.
func parseTable(t *testing.T, out string) map[string]row {
	t.Helper()
	rows := make(map[string]row)
	cols := regexp.MustCompile(` {2,}`) // tabwriter pads columns with at least two spaces
	for line := range strings.Lines(out) {
		c := cols.Split(strings.TrimSpace(line), -1)
		if len(c) != 7 || c[0] == "TASK" {
			continue
		}
		rows[c[1]] = row{task: c[0], state: c[2], attempts: c[3], value: c[4], receipt: c[5], proven: c[6]}
	}
	return rows
}

func TestRun(t *testing.T) {
	for _, quiet := range []bool{true, false} {
		t.Run(map[bool]string{true: "quiet", false: "with logs"}[quiet], func(t *testing.T) {
			dir := t.TempDir()
			var out strings.Builder

			require.NoError(t, run(t.Context(), &out, options{quiet: quiet, dataDir: dir}))

			got := out.String()
			assertTable(t, got, "now")
			assert.Contains(t, got, "data: "+filepath.Join(dir, "paas.db")+" (no program was proven by an earlier run;")
			assert.Contains(t, got, "\nsummary since the service started: blocked=0 pending=0 in_progress=0 retrying=0 completed=6 failed=0 cancelled=0\n")
		})
	}
}

func TestRunCreatesTheDataDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")

	require.NoError(t, run(t.Context(), &strings.Builder{}, options{quiet: true, dataDir: dir}))

	assert.FileExists(t, filepath.Join(dir, "paas.db"))
}

func TestSecondRunFindsTheFirstRunsProofs(t *testing.T) {
	dir := t.TempDir()
	var first, second strings.Builder
	require.NoError(t, run(t.Context(), &first, options{quiet: true, dataDir: dir}))

	require.NoError(t, run(t.Context(), &second, options{quiet: true, dataDir: dir}))

	got := second.String()
	assertTable(t, got, "earlier run")
	assert.Contains(t, got, "data: "+filepath.Join(dir, "paas.db")+
		" (6 of 6 programs were proven by an earlier run; delete the folder to start over)\n")
	// Nothing ran: no task reached a final state in the second service.
	assert.Contains(t, got, "\nsummary since the service started: blocked=0 pending=0 in_progress=0 retrying=0 completed=0 failed=0 cancelled=0\n")

	before, after := parseTable(t, first.String()), parseTable(t, got)
	require.Len(t, before, len(programs))
	require.Len(t, after, len(programs))
	tasks := make(map[string]bool)
	for _, r := range before {
		tasks[r.task] = true
	}
	require.Len(t, tasks, len(programs), "every program has its own task, and the table tells them apart")
	for _, p := range programs {
		b, a := before[p.program], after[p.program]
		assert.Equal(t, "now", b.proven, p.program)
		assert.Equal(t, "earlier run", a.proven, p.program)
		assert.Equal(t, b.task, a.task, "%s: the same task", p.program)
		assert.Equal(t, b.value, a.value, "%s: the same public value", p.program)
		assert.Equal(t, b.receipt, a.receipt, "%s: the same receipt", p.program)
		assert.Equal(t, b.attempts, a.attempts, "%s: the attempts of the first run", p.program)
	}
}

func TestRunFailsFastOnALockedDataFile(t *testing.T) {
	dir := t.TempDir()
	held, err := bolt.Open(filepath.Join(dir, "paas.db"), nil) // another quickstart, running
	require.NoError(t, err)
	defer func() { require.NoError(t, held.Close()) }()
	var out strings.Builder

	start := time.Now()
	err = run(t.Context(), &out, options{quiet: true, dataDir: dir})

	require.ErrorIs(t, err, bolt.ErrLocked)
	assert.Contains(t, err.Error(), "in use by another process")
	assert.Contains(t, err.Error(), "is another quickstart running on "+dir)
	// bolt gives up after its lock timeout (a second); a hang would be far longer.
	assert.Less(t, time.Since(start), 10*time.Second)
	assert.Empty(t, out.String())
}

func TestRunStopsOnCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out strings.Builder

	err := run(ctx, &out, options{quiet: true, dataDir: t.TempDir()})

	require.ErrorIs(t, err, context.Canceled)
}

func TestRunFailsOnAnUnusableDataDirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))

	err := run(t.Context(), &strings.Builder{}, options{quiet: true, dataDir: file})

	require.Error(t, err, "the data directory is a file")
}

func TestFib(t *testing.T) {
	for n, want := range map[uint64]uint64{0: 0, 1: 1, 2: 1, 10: 55, 93: 12200160415121876738} {
		got, err := fib(n)
		require.NoError(t, err)
		assert.Equal(t, want, got, "fib(%d)", n)
	}
	_, err := fib(94)
	var perm *paas.PermanentError
	assert.ErrorAs(t, err, &perm, "an overflow cannot be fixed by retrying")
}
