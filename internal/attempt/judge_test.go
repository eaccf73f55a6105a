package attempt_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/internal/attempt"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func noJitter(maxRetries int) paas.RetryConfig {
	return paas.RetryConfig{MaxRetries: maxRetries, BaseDelay: time.Second, Multiplier: 2, MaxDelay: time.Minute}
}

func TestJudgeSortsHandlerErrors(t *testing.T) {
	policy := noJitter(2)
	transient := errors.New("transient")
	cases := []struct {
		name     string
		err      error
		cause    error
		attempts int
		want     attempt.Verdict
	}{
		{"success", nil, nil, 1, attempt.Verdict{Next: paas.Completed}},
		{"success wins over cancel", nil, attempt.ErrCancelled, 1, attempt.Verdict{Next: paas.Completed}},
		{"permanent", paas.Permanent(transient), nil, 1, attempt.Verdict{Next: paas.Failed, LastErr: "permanent: transient"}},
		{"wrapped permanent", fmt.Errorf("fetch: %w", paas.Permanent(transient)), nil, 1, attempt.Verdict{Next: paas.Failed, LastErr: "fetch: permanent: transient"}},
		{"panic", &paas.PanicError{Value: "boom"}, nil, 1, attempt.Verdict{Next: paas.Failed, LastErr: "handler panicked: boom"}},
		{"transient", transient, nil, 1, attempt.Verdict{Next: paas.Retrying, LastErr: "transient", Delay: time.Second}},
		{"transient second retry", transient, nil, 2, attempt.Verdict{Next: paas.Retrying, LastErr: "transient", Delay: 2 * time.Second}},
		{"budget spent", transient, nil, 3, attempt.Verdict{Next: paas.Failed, LastErr: "transient (gave up after 3 attempts)"}},
		{"retry after", paas.RetryAfter(transient, time.Hour), nil, 1, attempt.Verdict{Next: paas.Retrying, LastErr: "retry after 1h0m0s: transient", Delay: time.Hour}},
		{"retry after, budget spent", paas.RetryAfter(transient, time.Hour), nil, 3, attempt.Verdict{Next: paas.Failed, LastErr: "retry after 1h0m0s: transient (gave up after 3 attempts)"}},
		{"cancelled by user", context.Canceled, attempt.ErrCancelled, 1, attempt.Verdict{Next: paas.Cancelled, LastErr: "context canceled"}},
		{"interrupted by stop", context.Canceled, attempt.ErrInterrupted, 1, attempt.Verdict{Next: paas.Pending, Refund: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, attempt.Judge(tc.err, tc.cause, paas.TaskRecord{Attempts: tc.attempts}, policy, t0, time.Hour))
		})
	}
	t.Run("no retries", func(t *testing.T) {
		assert.Equal(t, attempt.Verdict{Next: paas.Failed, LastErr: "transient"}, attempt.Judge(transient, nil, paas.TaskRecord{Attempts: 1}, noJitter(0), t0, time.Hour))
	})
}
