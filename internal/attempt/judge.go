// Package attempt is what the service does with one attempt of a handler: Prove runs it,
// turning a panic into an error, and Judge sorts its outcome, deciding what becomes of the task
// given the error the handler returned. Judge is the one place where handler errors are
// interpreted. handler/handlertest uses both, so that what it tells a handler's tests is what
// the service does.
package attempt

import (
	"errors"
	"fmt"
	"time"

	"github.com/zkpaas/paas"
)

// Causes set on a handler's context when the service cancels it; they tell Judge why the
// handler stopped, whatever error the handler returned. They are paas's, so that hosts can
// read them too.
var (
	ErrCancelled   = paas.ErrCancelled
	ErrInterrupted = paas.ErrInterrupted
	ErrTimedOut    = paas.ErrTimedOut
	// ErrCrashed is the error recorded for an attempt found InProgress at start: the process
	// that ran it stopped without recording an outcome.
	ErrCrashed = errors.New("attempt interrupted: the service stopped while it was in progress")
)

// Verdict is what becomes of a task after an attempt.
type Verdict struct {
	Next    paas.TaskState
	LastErr string
	Delay   time.Duration // before the next attempt, for Retrying and Blocked
	Refund  bool          // the attempt does not count against MaxRetries
	Restart bool          // the checkpoint is discarded; the attempt counts against MaxRestarts
	Waiting bool          // the input was not ready
	// Interrupted: the attempt was cut short by the end of its process; it counts against
	// MaxInterruptions.
	Interrupted bool
}

// Judge sorts the outcome of an attempt. It is the one place where handler errors are
// interpreted: err is what the handler returned, cause why its context was cancelled (nil if it
// was not), rec the task as it was during the attempt.
func Judge(err, cause error, rec paas.TaskRecord, policy paas.RetryConfig, now time.Time, maxInputWait time.Duration) Verdict {
	if err == nil {
		// Even when cancellation was asked for: the proof exists, and was paid for.
		return Verdict{Next: paas.Completed}
	}
	switch {
	case errors.Is(cause, ErrCancelled):
		return Verdict{Next: paas.Cancelled, LastErr: err.Error()}
	case errors.Is(cause, ErrInterrupted):
		return Verdict{Next: paas.Pending, Refund: true}
	case errors.Is(err, ErrCrashed):
		if rec.Interruptions >= policy.MaxInterruptions {
			return Verdict{Next: paas.Failed, Refund: true, Interrupted: true, LastErr: fmt.Sprintf(
				"%s (gave up after %d interrupted attempts: the task may be what stops the process)", err, rec.Interruptions+1)}
		}
		// Run it again at once: its process stopped (a deploy, a kill), not the task.
		return Verdict{Next: paas.Pending, LastErr: err.Error(), Refund: true, Interrupted: true}
	case errors.Is(cause, ErrTimedOut):
		// Whatever the handler made of its cancelled context, the attempt ran out of time: a
		// transient failure, retried under the budget with a full timeout again.
		return retryOrFail(fmt.Errorf("%w: %w", ErrTimedOut, err), rec, policy)
	}
	_, panicked := errors.AsType[*paas.PanicError](err)
	_, permanent := errors.AsType[*paas.PermanentError](err)
	notReady, waiting := errors.AsType[*paas.NotReadyError](err)
	_, restart := errors.AsType[*paas.RestartError](err)
	switch {
	case panicked, permanent:
		return Verdict{Next: paas.Failed, LastErr: err.Error()}
	case waiting:
		since := rec.WaitingSince
		if since.IsZero() {
			since = now
		}
		left := since.Add(maxInputWait).Sub(now)
		if left <= 0 {
			return Verdict{Next: paas.Failed, LastErr: fmt.Sprintf("%s (input not ready for %s, MaxInputWait %s reached)",
				err, now.Sub(since), maxInputWait)}
		}
		// The last look is at the bound, however long the handler asked to wait.
		return Verdict{Next: paas.Blocked, LastErr: err.Error(), Delay: min(notReady.After, left), Refund: true, Waiting: true}
	case restart:
		if rec.Restarts >= policy.MaxRestarts {
			return Verdict{Next: paas.Failed, Refund: true, Restart: true,
				LastErr: fmt.Sprintf("%s (gave up after %d restarts)", err, rec.Restarts+1)}
		}
		return Verdict{Next: paas.Retrying, LastErr: err.Error(), Delay: policy.Delay(rec.Restarts + 1), Refund: true, Restart: true}
	}
	return retryOrFail(err, rec, policy)
}

// retryOrFail is the verdict on a transient failure: a retry while the budget lasts.
func retryOrFail(err error, rec paas.TaskRecord, policy paas.RetryConfig) Verdict {
	if rec.Attempts > policy.MaxRetries {
		msg := err.Error()
		if policy.MaxRetries > 0 {
			msg = fmt.Sprintf("%s (gave up after %d attempts)", msg, rec.Attempts)
		}
		return Verdict{Next: paas.Failed, LastErr: msg}
	}
	delay := policy.Delay(rec.Attempts)
	if after, ok := errors.AsType[*paas.RetryAfterError](err); ok {
		delay = after.Delay
	}
	return Verdict{Next: paas.Retrying, LastErr: err.Error(), Delay: delay}
}
