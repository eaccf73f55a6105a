package paas

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"

	"github.com/zkpaas/paas/clock"
)

// Retry defaults, used by DefaultRetryConfig and for zero fields of a RetryConfig.
const (
	DefaultMaxRetries  = 3
	DefaultBaseDelay   = time.Second
	DefaultMultiplier  = 2.0
	DefaultMaxDelay    = 5 * time.Minute
	DefaultJitter      = 0.1
	DefaultMaxRestarts = 3
	// DefaultMaxInterruptions is the RetryConfig.MaxInterruptions used when it is zero.
	DefaultMaxInterruptions = 10
)

// Disabled, given as RetryConfig.MaxRetries, Jitter, MaxRestarts or MaxInterruptions, turns
// that part of the policy off: no retries, no jitter, no restarts, or a task failed by its
// first interruption. Zero, in every field, means the field's default.
const Disabled = -1

// DefaultMaxInputWait is the Config.MaxInputWait used when it is zero.
const DefaultMaxInputWait = 24 * time.Hour

// Config configures a ProverService. The zero value of every field but Workers is usable.
type Config struct {
	// Workers maps each backend to its capacity: how many units of task weight may be proven at
	// once. A program weighs 1 unless it implements Weighted. Tasks for a backend absent from
	// this map are refused at Submit with ErrUnknownBackend. Required; each value must be >= 1.
	Workers map[Backend]int64

	// Retry is the retry policy for transient handler errors. Nil means DefaultRetryConfig().
	Retry *RetryConfig

	// Timeouts bounds each attempt of a task on a backend, unless the task has a timeout of its
	// own (Timeout at Submit). When it runs out the handler's context is cancelled and the
	// attempt counts as a transient failure: it is retried under Retry like any other, and each
	// retry gets the full timeout again. A backend absent from the map has no timeout.
	Timeouts map[Backend]time.Duration

	// MaxInputWait bounds how long, in all, a task may wait for its input (handlers returning
	// NotReady), counted from the first time it was not ready. Past it the task fails. Zero
	// means DefaultMaxInputWait (24h).
	MaxInputWait time.Duration

	// Codec encodes programs at Submit. Nil means JSONCodec.
	Codec Codec

	// Clock tells the time for retry delays and timestamps. Nil means clock.Real(); tests
	// pass a *clock.Fake.
	Clock clock.Clock

	// Logger receives the service's logs. Nil means zap.NewNop().
	Logger *zap.Logger
}

// RetryConfig is the retry policy for transient handler errors. The delay before retry n
// (n = 1 for the first retry) is min(BaseDelay × Multiplier^(n-1), MaxDelay), of which a
// random fraction of up to Jitter is taken off, so that tasks that failed together do not all
// retry at the same moment.
//
// Every zero field takes its default, so that a RetryConfig that sets only BaseDelay still
// retries, with jitter and restarts; Disabled turns a count or the jitter off.
type RetryConfig struct {
	// MaxRetries is how many times a task is retried after its first attempt. Zero means
	// DefaultMaxRetries (3); Disabled means none. The count is kept in the store, so it
	// survives restarts.
	MaxRetries int
	// BaseDelay is the delay before the first retry. Zero means DefaultBaseDelay (1s).
	BaseDelay time.Duration
	// Multiplier scales the delay at each retry; at least 1. Zero means DefaultMultiplier (2).
	Multiplier float64
	// MaxDelay caps the delay; at least BaseDelay. Zero means DefaultMaxDelay (5m).
	MaxDelay time.Duration
	// Jitter is the largest fraction of a delay that is randomly taken off, in (0, 1]. Zero
	// means DefaultJitter (0.1); Disabled means none.
	Jitter float64
	// MaxRestarts is how many attempts may fail with Restart (discarding the task's
	// checkpoint), a budget apart from MaxRetries. Zero means DefaultMaxRestarts (3);
	// Disabled means a Restart fails the task.
	MaxRestarts int
	// MaxInterruptions is how many attempts of a task may be cut short by the end of the
	// process that ran them (found InProgress at Start: a crash, a kill, a handler abandoned
	// by Stop) before the task fails, a budget apart from MaxRetries: a node that is killed
	// often does not use up its tasks' retries, while a task that crashes the process every
	// time still stops looping. Zero means DefaultMaxInterruptions (10); Disabled means the
	// first interruption fails the task.
	MaxInterruptions int
}

// DefaultRetryConfig returns the retry policy used when Config.Retry is nil: 3 retries, 1s
// doubling up to 5m, 10% jitter.
func DefaultRetryConfig() RetryConfig {
	return RetryConfig{
		MaxRetries:       DefaultMaxRetries,
		BaseDelay:        DefaultBaseDelay,
		Multiplier:       DefaultMultiplier,
		MaxDelay:         DefaultMaxDelay,
		Jitter:           DefaultJitter,
		MaxRestarts:      DefaultMaxRestarts,
		MaxInterruptions: DefaultMaxInterruptions,
	}
}

// WithDefaults returns a copy of c with every unset field set to its default. It never
// modifies c or the maps it holds.
func (c Config) WithDefaults() Config {
	c.Workers = maps.Clone(c.Workers)
	c.Timeouts = maps.Clone(c.Timeouts)
	if c.MaxInputWait == 0 {
		c.MaxInputWait = DefaultMaxInputWait
	}
	retry := DefaultRetryConfig()
	if c.Retry != nil {
		retry = c.Retry.WithDefaults()
	}
	c.Retry = &retry
	if c.Codec == nil {
		c.Codec = JSONCodec{}
	}
	if c.Clock == nil {
		c.Clock = clock.Real()
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// Validate reports the first invalid field of c, wrapped in ErrInvalidConfig. Call it on the
// result of WithDefaults; New does both.
func (c Config) Validate() error {
	if len(c.Workers) == 0 {
		return fmt.Errorf("%w: Workers: no backend configured", ErrInvalidConfig)
	}
	for b, n := range c.Workers {
		if b == "" {
			return fmt.Errorf("%w: Workers: empty backend name", ErrInvalidConfig)
		}
		if n < 1 {
			return fmt.Errorf("%w: Workers[%q] = %d, want >= 1", ErrInvalidConfig, b, n)
		}
	}
	for b, d := range c.Timeouts {
		if d < 0 {
			return fmt.Errorf("%w: Timeouts[%q] = %s, want >= 0", ErrInvalidConfig, b, d)
		}
	}
	if c.MaxInputWait < 0 {
		return fmt.Errorf("%w: MaxInputWait = %s, want >= 0", ErrInvalidConfig, c.MaxInputWait)
	}
	if c.Retry != nil {
		if err := c.Retry.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// WithDefaults returns a copy of r with every zero field set to its default. Disabled fields
// stay Disabled, so WithDefaults of its own result changes nothing.
func (r RetryConfig) WithDefaults() RetryConfig {
	if r.MaxRetries == 0 {
		r.MaxRetries = DefaultMaxRetries
	}
	if r.Jitter == 0 {
		r.Jitter = DefaultJitter
	}
	if r.MaxRestarts == 0 {
		r.MaxRestarts = DefaultMaxRestarts
	}
	if r.BaseDelay == 0 {
		r.BaseDelay = DefaultBaseDelay
	}
	if r.Multiplier == 0 {
		r.Multiplier = DefaultMultiplier
	}
	if r.MaxDelay == 0 {
		r.MaxDelay = max(DefaultMaxDelay, r.BaseDelay)
	}
	if r.MaxInterruptions == 0 {
		r.MaxInterruptions = DefaultMaxInterruptions
	}
	return r
}

// Validate reports the first invalid field of r, wrapped in ErrInvalidConfig.
func (r RetryConfig) Validate() error {
	switch {
	case r.MaxRetries < Disabled:
		return fmt.Errorf("%w: Retry.MaxRetries = %d, want >= 0, or Disabled", ErrInvalidConfig, r.MaxRetries)
	case r.MaxRestarts < Disabled:
		return fmt.Errorf("%w: Retry.MaxRestarts = %d, want >= 0, or Disabled", ErrInvalidConfig, r.MaxRestarts)
	case r.MaxInterruptions < Disabled:
		return fmt.Errorf("%w: Retry.MaxInterruptions = %d, want >= 0, or Disabled", ErrInvalidConfig, r.MaxInterruptions)
	case r.BaseDelay <= 0:
		return fmt.Errorf("%w: Retry.BaseDelay = %s, want > 0", ErrInvalidConfig, r.BaseDelay)
	case math.IsNaN(r.Multiplier) || math.IsInf(r.Multiplier, 0) || r.Multiplier < 1:
		return fmt.Errorf("%w: Retry.Multiplier = %v, want a finite number >= 1", ErrInvalidConfig, r.Multiplier)
	case r.MaxDelay < r.BaseDelay:
		return fmt.Errorf("%w: Retry.MaxDelay = %s, want >= BaseDelay (%s)", ErrInvalidConfig, r.MaxDelay, r.BaseDelay)
	case math.IsNaN(r.Jitter) || (r.Jitter < 0 && r.Jitter != Disabled) || r.Jitter > 1:
		return fmt.Errorf("%w: Retry.Jitter = %v, want a fraction in [0, 1], or Disabled", ErrInvalidConfig, r.Jitter)
	}
	return nil
}

// Backoff returns the delay before retry n (n >= 1) without jitter:
// min(BaseDelay × Multiplier^(n-1), MaxDelay).
func (r RetryConfig) Backoff(n int) time.Duration {
	d := float64(r.BaseDelay) * math.Pow(r.Multiplier, float64(max(n-1, 0)))
	if d >= float64(r.MaxDelay) || math.IsInf(d, 0) {
		return r.MaxDelay
	}
	return time.Duration(d)
}

// Delay returns the delay before retry n: Backoff(n) less a random fraction of up to Jitter.
func (r RetryConfig) Delay(n int) time.Duration {
	d := r.Backoff(n)
	if r.Jitter <= 0 {
		return d
	}
	return d - time.Duration(r.Jitter*rand.Float64()*float64(d))
}
