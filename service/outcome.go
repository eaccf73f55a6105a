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
	errTimedOut    = errors.New("attempt timed out")
	// errCrashed is the error recorded for an attempt found InProgress at start: the process
	// that ran it stopped without recording an outcome.
	errCrashed = errors.New("attempt interrupted: the service stopped while it was in progress")
)

// verdict is what becomes of a task after an attempt.
type verdict struct {
	next    paas.TaskState
	lastErr string
	delay   time.Duration // before the next attempt, for Retrying and Blocked
	refund  bool          // the attempt does not count against MaxRetries
	restart bool          // the checkpoint is discarded; the attempt counts against MaxRestarts
	waiting bool          // the input was not ready
	// interrupted: the attempt was cut short by the end of its process; it counts against
	// MaxInterruptions.
	interrupted bool
}

// judge sorts the outcome of an attempt. It is the one place where handler errors are
// interpreted: err is what the handler returned, cause why its context was cancelled (nil if it
// was not), rec the task as it was during the attempt.
func judge(err, cause error, rec paas.TaskRecord, policy paas.RetryConfig, now time.Time, maxInputWait time.Duration) verdict {
	if err == nil {
		// Even when cancellation was asked for: the proof exists, and was paid for.
		return verdict{next: paas.Completed}
	}
	switch {
	case errors.Is(cause, errCancelled):
		return verdict{next: paas.Cancelled, lastErr: err.Error()}
	case errors.Is(cause, errInterrupted):
		return verdict{next: paas.Pending, refund: true}
	case errors.Is(err, errCrashed):
		if rec.Interruptions >= policy.MaxInterruptions {
			return verdict{next: paas.Failed, refund: true, interrupted: true, lastErr: fmt.Sprintf(
				"%s (gave up after %d interrupted attempts: the task may be what stops the process)", err, rec.Interruptions+1)}
		}
		// Run it again at once: its process stopped (a deploy, a kill), not the task.
		return verdict{next: paas.Pending, lastErr: err.Error(), refund: true, interrupted: true}
	case errors.Is(cause, errTimedOut):
		// Whatever the handler made of its cancelled context, the attempt ran out of time: a
		// transient failure, retried under the budget with a full timeout again.
		return retryOrFail(fmt.Errorf("%w: %w", errTimedOut, err), rec, policy)
	}
	var (
		panicErr *paas.PanicError
		perm     *paas.PermanentError
		notReady *paas.NotReadyError
		restart  *paas.RestartError
	)
	switch {
	case errors.As(err, &panicErr), errors.As(err, &perm):
		return verdict{next: paas.Failed, lastErr: err.Error()}
	case errors.As(err, &notReady):
		since := rec.WaitingSince
		if since.IsZero() {
			since = now
		}
		left := since.Add(maxInputWait).Sub(now)
		if left <= 0 {
			return verdict{next: paas.Failed, lastErr: fmt.Sprintf("%s (input not ready for %s, MaxInputWait %s reached)",
				err, now.Sub(since), maxInputWait)}
		}
		// The last look is at the bound, however long the handler asked to wait.
		return verdict{next: paas.Blocked, lastErr: err.Error(), delay: min(notReady.After, left), refund: true, waiting: true}
	case errors.As(err, &restart):
		if rec.Restarts >= policy.MaxRestarts {
			return verdict{next: paas.Failed, refund: true, restart: true,
				lastErr: fmt.Sprintf("%s (gave up after %d restarts)", err, rec.Restarts+1)}
		}
		return verdict{next: paas.Retrying, lastErr: err.Error(), delay: policy.Delay(rec.Restarts + 1), refund: true, restart: true}
	}
	return retryOrFail(err, rec, policy)
}

// retryOrFail is the verdict on a transient failure: a retry while the budget lasts.
func retryOrFail(err error, rec paas.TaskRecord, policy paas.RetryConfig) verdict {
	if rec.Attempts > policy.MaxRetries {
		msg := err.Error()
		if policy.MaxRetries > 0 {
			msg = fmt.Sprintf("%s (gave up after %d attempts)", msg, rec.Attempts)
		}
		return verdict{next: paas.Failed, lastErr: msg}
	}
	delay := policy.Delay(rec.Attempts)
	var after *paas.RetryAfterError
	if errors.As(err, &after) {
		delay = after.Delay
	}
	return verdict{next: paas.Retrying, lastErr: err.Error(), delay: delay}
}
