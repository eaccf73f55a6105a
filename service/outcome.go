package service

import (
	"errors"
	"fmt"
	"time"

	"github.com/zkpaas/paas"
)

// Causes set on a handler's context when the service cancels it; they tell the verdict why the
// handler stopped, whatever error the handler returned.
var (
	errCancelled   = errors.New("cancelled by the user")
	errInterrupted = errors.New("interrupted by service stop")
	// errCrashed is the error recorded for an attempt found InProgress at start: the process
	// that ran it stopped without recording an outcome.
	errCrashed = errors.New("attempt interrupted: the service stopped while it was in progress")
)

// verdict is what becomes of a task after an attempt.
type verdict struct {
	next    paas.TaskState
	lastErr string
	delay   time.Duration // before the next attempt, for Retrying
	refund  bool          // the attempt does not count against the budget
}

// judge sorts the outcome of an attempt. It is the one place where handler errors are
// interpreted: err is what the handler returned, cause why its context was cancelled (nil if it
// was not), attempts how many attempts have started, including this one.
func judge(err, cause error, attempts int, policy paas.RetryConfig) verdict {
	if err == nil {
		// Even when cancellation was asked for: the proof exists, and was paid for.
		return verdict{next: paas.Completed}
	}
	switch {
	case errors.Is(cause, errCancelled):
		return verdict{next: paas.Cancelled, lastErr: err.Error()}
	case errors.Is(cause, errInterrupted):
		return verdict{next: paas.Pending, refund: true}
	}
	var (
		panicErr *paas.PanicError
		perm     *paas.PermanentError
		after    *paas.RetryAfterError
	)
	switch {
	case errors.As(err, &panicErr), errors.As(err, &perm):
		return verdict{next: paas.Failed, lastErr: err.Error()}
	case attempts > policy.MaxRetries:
		msg := err.Error()
		if policy.MaxRetries > 0 {
			msg = fmt.Sprintf("%s (gave up after %d attempts)", msg, attempts)
		}
		return verdict{next: paas.Failed, lastErr: msg}
	case errors.As(err, &after):
		return verdict{next: paas.Retrying, lastErr: err.Error(), delay: after.Delay}
	default:
		return verdict{next: paas.Retrying, lastErr: err.Error(), delay: policy.Delay(attempts)}
	}
}
