package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/zkpaas/paas"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	for _, quiet := range []bool{true, false} {
		t.Run(map[bool]string{true: "quiet", false: "with logs"}[quiet], func(t *testing.T) {
			var out strings.Builder

			require.NoError(t, run(t.Context(), &out, quiet))

			got := out.String()
			assert.Regexp(t, `fib\(10\) on native again is the same task [0-9a-f]{8}\n`, got)
			// Every program completed with its value; fib(13) needed a retry.
			for _, row := range []string{
				`fib\(10\) on native +completed +1 +55 +-`,
				`fib\(13\) on native +completed +2 +233 +-`,
				`fib\(50\) on native +completed +1 +12586269025 +-`,
				`fib\(90\) on native +completed +1 +2880067194370816120 +-`,
				`fib\(10\) on sp1 +completed +1 +55 +sha256:[0-9a-f]{12}\.\.\.`,
				`fib\(20\) on sp1 +completed +1 +6765 +sha256:[0-9a-f]{12}\.\.\.`,
			} {
				assert.Regexp(t, regexp.MustCompile(`(?m)^[0-9a-f]{8} +`+row+`$`), got)
			}
			assert.Contains(t, got, "\nsummary: pending=0 in_progress=0 retrying=0 completed=6 failed=0 cancelled=0\n")
		})
	}
}

func TestRunStopsOnCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out strings.Builder

	err := run(ctx, &out, true)

	require.ErrorIs(t, err, context.Canceled)
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
