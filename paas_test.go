package paas_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
)

func TestOnlyLegalTransitionsAreAllowed(t *testing.T) {
	legal := map[[2]paas.TaskState]bool{
		{paas.Blocked, paas.Pending}:      true,
		{paas.Blocked, paas.Failed}:       true,
		{paas.Blocked, paas.Cancelled}:    true,
		{paas.InProgress, paas.Blocked}:   true,
		{paas.Failed, paas.Pending}:       true, // an operator's Retry
		{paas.Failed, paas.Blocked}:       true,
		{paas.Cancelled, paas.Pending}:    true,
		{paas.Cancelled, paas.Blocked}:    true,
		{paas.Pending, paas.InProgress}:   true,
		{paas.Pending, paas.Cancelled}:    true,
		{paas.InProgress, paas.Completed}: true,
		{paas.InProgress, paas.Failed}:    true,
		{paas.InProgress, paas.Retrying}:  true,
		{paas.InProgress, paas.Cancelled}: true,
		{paas.InProgress, paas.Pending}:   true,
		{paas.Retrying, paas.Pending}:     true,
		{paas.Retrying, paas.Cancelled}:   true,
		{paas.Retrying, paas.Failed}:      true,
	}
	for _, from := range paas.States {
		for _, to := range paas.States {
			assert.Equal(t, legal[[2]paas.TaskState{from, to}], from.CanTransitionTo(to), "%s -> %s", from, to)
		}
	}
	for _, s := range paas.States {
		assert.Equal(t, s == paas.Completed || s == paas.Failed || s == paas.Cancelled, s.Final(), s.String())
		assert.True(t, s.Valid())
	}
	assert.False(t, paas.TaskState(0).Valid())
	assert.Equal(t, "TaskState(9)", paas.TaskState(9).String())
}

func TestTaskIDRoundTripsThroughText(t *testing.T) {
	id := paas.NewTaskID()
	assert.False(t, id.IsZero())
	parsed, err := paas.ParseTaskID(id.String())
	require.NoError(t, err)
	assert.Equal(t, id, parsed)
	b, err := json.Marshal(map[string]paas.TaskID{"id": id})
	require.NoError(t, err)
	var back map[string]paas.TaskID
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, id, back["id"])
	_, err = paas.ParseTaskID("not-a-uuid")
	assert.Error(t, err)
}

func TestKeyOfSeparatesEveryPart(t *testing.T) {
	base := paas.KeyOf("fib", []byte(`{"N":1}`), paas.BackendSP1)
	assert.Equal(t, base, paas.KeyOf("fib", []byte(`{"N":1}`), paas.BackendSP1), "deterministic")
	assert.NotEqual(t, base, paas.KeyOf("fib2", []byte(`{"N":1}`), paas.BackendSP1))
	assert.NotEqual(t, base, paas.KeyOf("fib", []byte(`{"N":2}`), paas.BackendSP1))
	assert.NotEqual(t, base, paas.KeyOf("fib", []byte(`{"N":1}`), paas.BackendRisc0))
	assert.NotEqual(t, paas.KeyOf("ab", []byte("c"), "d"), paas.KeyOf("a", []byte("bc"), "d"), "parts are length-prefixed")
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	r := paas.RetryConfig{BaseDelay: time.Second, Multiplier: 3, MaxDelay: 20 * time.Second}
	assert.Equal(t, time.Second, r.Backoff(1))
	assert.Equal(t, 3*time.Second, r.Backoff(2))
	assert.Equal(t, 9*time.Second, r.Backoff(3))
	assert.Equal(t, 20*time.Second, r.Backoff(4))
	assert.Equal(t, 20*time.Second, r.Backoff(10_000), "no overflow")
	assert.Equal(t, r.Backoff(3), r.Delay(3), "no jitter: delay is the backoff")
}

func TestJitterTakesOffAtMostItsFraction(t *testing.T) {
	r := paas.RetryConfig{BaseDelay: time.Second, Multiplier: 2, MaxDelay: time.Minute, Jitter: 0.5}
	seen := map[time.Duration]bool{}
	for range 1000 {
		d := r.Delay(2)
		assert.GreaterOrEqual(t, d, time.Second)
		assert.LessOrEqual(t, d, 2*time.Second)
		seen[d] = true
	}
	assert.Greater(t, len(seen), 100, "delays are spread")
}

func TestConfigWithDefaultsCopiesAndFillsIn(t *testing.T) {
	workers := map[paas.Backend]int64{paas.BackendNative: 1}
	cfg := paas.Config{Workers: workers}
	got := cfg.WithDefaults()
	require.NoError(t, got.Validate())
	assert.Nil(t, cfg.Retry, "the caller's config is not modified")
	assert.Equal(t, paas.DefaultRetryConfig(), *got.Retry)
	assert.NotNil(t, got.Codec)
	assert.NotNil(t, got.Clock)
	assert.NotNil(t, got.Logger)
	got.Workers[paas.BackendSP1] = 4
	assert.Len(t, workers, 1, "the caller's map is not shared")

	// Setting one field leaves the others at their defaults: retries go on.
	r := paas.RetryConfig{BaseDelay: 2 * time.Second}.WithDefaults()
	assert.Equal(t, paas.DefaultMaxRetries, r.MaxRetries, "zero retries means the default, not none")
	assert.Equal(t, 2*time.Second, r.BaseDelay)
	assert.Equal(t, paas.DefaultMultiplier, r.Multiplier)
	assert.Equal(t, paas.DefaultMaxDelay, r.MaxDelay)
	assert.Equal(t, paas.DefaultJitter, r.Jitter)
	assert.Equal(t, paas.DefaultMaxRestarts, r.MaxRestarts)
	off := paas.RetryConfig{MaxRetries: paas.Disabled, Jitter: paas.Disabled, MaxRestarts: paas.Disabled}.WithDefaults()
	require.NoError(t, off.Validate())
	assert.Equal(t, off, off.WithDefaults(), "Disabled stays Disabled")
	assert.Equal(t, time.Second, off.Delay(1), "no jitter")
	assert.Equal(t, 10*time.Minute, paas.RetryConfig{BaseDelay: 10 * time.Minute}.WithDefaults().MaxDelay,
		"a base delay above the default cap raises the cap")
}

func TestRetryConfigValidateRefusesNonsense(t *testing.T) {
	ok := paas.DefaultRetryConfig()
	require.NoError(t, ok.Validate())
	for name, mutate := range map[string]func(*paas.RetryConfig){
		"negative retries":    func(r *paas.RetryConfig) { r.MaxRetries = -2 },
		"zero base":           func(r *paas.RetryConfig) { r.BaseDelay = 0 },
		"NaN multiplier":      func(r *paas.RetryConfig) { r.Multiplier = math.NaN() },
		"infinite multiplier": func(r *paas.RetryConfig) { r.Multiplier = math.Inf(1) },
		"multiplier below 1":  func(r *paas.RetryConfig) { r.Multiplier = 0.9 },
		"max below base":      func(r *paas.RetryConfig) { r.MaxDelay = r.BaseDelay - 1 },
		"negative jitter":     func(r *paas.RetryConfig) { r.Jitter = -0.1 },
		"jitter above 1":      func(r *paas.RetryConfig) { r.Jitter = 1.1 },
		"NaN jitter":          func(r *paas.RetryConfig) { r.Jitter = math.NaN() },
	} {
		r := ok
		mutate(&r)
		assert.ErrorIs(t, r.Validate(), paas.ErrInvalidConfig, name)
	}
}

func TestErrorWrappers(t *testing.T) {
	base := errors.New("boom")
	assert.Nil(t, paas.Permanent(nil))
	assert.Nil(t, paas.RetryAfter(nil, time.Second))
	var perm *paas.PermanentError
	require.ErrorAs(t, paas.Permanent(base), &perm)
	assert.ErrorIs(t, paas.Permanent(base), base)
	var after *paas.RetryAfterError
	require.ErrorAs(t, paas.RetryAfter(base, -time.Second), &after)
	assert.Equal(t, time.Duration(0), after.Delay, "negative delays count as zero")
	assert.ErrorIs(t, after, base)

	res := paas.TaskResult{ID: paas.NewTaskID(), State: paas.Failed, Error: "bad"}
	var te *paas.TaskError
	require.ErrorAs(t, res.Err(), &te)
	assert.Equal(t, "paas: task "+res.ID.String()+" failed: bad", te.Error())
	assert.NoError(t, paas.TaskResult{State: paas.Completed}.Err())
}

func TestWeightOf(t *testing.T) {
	assert.Equal(t, int64(1), paas.WeightOf(plain{}))
	assert.Equal(t, int64(3), paas.WeightOf(heavy{}))
}

type plain struct{}

func (plain) RoutingKey() paas.RoutingKey { return "p" }

type heavy struct{}

func (heavy) RoutingKey() paas.RoutingKey { return "h" }
func (heavy) Weight() int64               { return 3 }

func TestMaxInterruptionsDefaultsAndIsValidated(t *testing.T) {
	got := paas.RetryConfig{MaxRetries: 1}.WithDefaults()
	assert.Equal(t, paas.DefaultMaxInterruptions, got.MaxInterruptions, "zero takes the default: a crash must not fail tasks")
	assert.Equal(t, paas.DefaultMaxInterruptions, paas.DefaultRetryConfig().MaxInterruptions)
	bad := paas.DefaultRetryConfig()
	bad.MaxInterruptions = -2
	assert.ErrorIs(t, bad.Validate(), paas.ErrInvalidConfig)
}

func TestTaskResultErrCarriesTheDependencysState(t *testing.T) {
	dep := paas.NewTaskID()
	res := paas.TaskResult{ID: paas.NewTaskID(), State: paas.Failed, FailedDependency: dep, FailedDependencyState: paas.Cancelled}
	var de *paas.DependencyError
	require.ErrorAs(t, res.Err(), &de)
	assert.Equal(t, paas.DependencyError{ID: dep, State: paas.Cancelled}, *de)
}

func TestAbandonedErrorIsItsContextError(t *testing.T) {
	err := error(&paas.AbandonedError{Handlers: 2, Err: context.DeadlineExceeded})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "2 handlers abandoned")
}

// KeyOf runs for every Submit: it allocates the key, nothing more.
func TestKeyOfAllocatesTheKeyOnly(t *testing.T) {
	program := []byte(`{"N":42}`)
	allocs := testing.AllocsPerRun(100, func() { _ = paas.KeyOf("job", program, paas.BackendNative) })
	assert.LessOrEqual(t, allocs, 1.0)
}
