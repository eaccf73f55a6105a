package paas

import (
	"errors"
	"fmt"
	"time"
)

// Errors returned by the service and its handle. Match them with errors.Is.
var (
	// ErrStopped is returned by every handle method once the service is stopping or stopped.
	ErrStopped = errors.New("paas: service stopped")
	// ErrNotStarted is returned by handle methods called before ProverService.Start.
	ErrNotStarted = errors.New("paas: service not started")
	// ErrAlreadyStarted is returned by a second ProverService.Start.
	ErrAlreadyStarted = errors.New("paas: service already started")
	// ErrTaskNotFound is returned for an id that names no task.
	ErrTaskNotFound = errors.New("paas: task not found")
	// ErrTaskFinished is returned when cancelling a task that has already reached a final state.
	ErrTaskFinished = errors.New("paas: task already finished")

	// ErrConflict is wrapped by the error of a fenced write (see TaskRecord.Version) that
	// finds the stored record changed since the record it was decided on was read. Nothing was
	// written; the writer reads the record again and decides anew.
	ErrConflict = errors.New("paas: task changed since it was read")

	// ErrProofNotFound is wrapped by the error of a ProofReader that has no proof for a task.
	ErrProofNotFound = errors.New("paas: proof not found")

	// ErrStoreClosed is wrapped by the errors of a store that has been closed. The service
	// does not retry writes that fail with it.
	ErrStoreClosed = errors.New("paas: store closed")

	// ErrInvalidConfig wraps every error of Config validation.
	ErrInvalidConfig = errors.New("paas: invalid config")

	// ErrInvalidTask is wrapped by every error of a Submit that refuses its input: the errors
	// below, and a *DependencyError for a dependency that has already failed. errors.Is(err,
	// ErrInvalidTask) tells bad input, which submitting again cannot fix, from a failure of
	// the store or a stopped service, as ErrInvalidConfig does for configuration. The errors
	// below keep their meaning elsewhere: Prune refuses a negative age with ErrInvalidOption,
	// and Retry a task whose dependency was pruned with ErrUnknownDependency, both bad input
	// too.
	ErrInvalidTask = errors.New("paas: invalid task")

	// ErrUnknownBackend: Submit named a backend that has no workers configured.
	ErrUnknownBackend = invalid("backend has no workers")
	// ErrNoHandler: Submit named a routing key that has no handler.
	ErrNoHandler = invalid("no handler for routing key")
	// ErrEncodeProgram: the program could not be encoded by the Codec, or its encoding does
	// not decode back to itself.
	ErrEncodeProgram = invalid("cannot encode program")
	// ErrInvalidWeight: the program's weight is below 1 or above its backend's capacity, so it
	// could never run.
	ErrInvalidWeight = invalid("invalid task weight")
	// ErrInvalidOption: an option of Submit, or an argument of another call, is out of range.
	ErrInvalidOption = invalid("invalid option")
	// ErrUnknownDependency: Submit named a dependency that is no task.
	ErrUnknownDependency = invalid("unknown dependency")

	// ErrNotRunHere is wrapped by the error of a handle method about a task that this service
	// cannot run: it has no handler for its routing key or no workers for its backend (another
	// service on the store does), so it can neither wait for it, cancel it nor retry it.
	ErrNotRunHere = errors.New("paas: task not run by this service")
	// ErrCheckpointRefused is wrapped by the error of Task.SaveCheckpoint when the attempt it
	// was given to has ended, or when a checkpoint of the attempt is being saved already.
	ErrCheckpointRefused = errors.New("paas: checkpoint refused")
	// ErrNotRetryable is returned by Retry for a task that is not Failed or Cancelled.
	ErrNotRetryable = errors.New("paas: only a failed or cancelled task can be retried")
)

// Causes of the end of a handler's context, as context.Cause(ctx) returns them. A host that
// holds something outside the process, such as a session on a remote proving network, reads
// them to tell a user's Cancel, after which the remote work should be stopped, from a service
// stop, after which the next attempt (perhaps in another process) picks that work up again
// from its checkpoint.
var (
	// ErrCancelled is the cause when the task was cancelled by ProverHandle.Cancel.
	ErrCancelled = errors.New("cancelled by the user")
	// ErrInterrupted is the cause when the service is stopping and the attempt outlived its
	// grace period. The task runs again on the next Start, with its checkpoint.
	ErrInterrupted = errors.New("interrupted by service stop")
	// ErrTimedOut is the cause when the attempt ran past its timeout.
	ErrTimedOut = errors.New("attempt timed out")
)

// invalid returns a refusal of Submit's, which wraps ErrInvalidTask.
func invalid(msg string) error { return &invalidTaskError{msg: "paas: " + msg} }

type invalidTaskError struct{ msg string }

func (e *invalidTaskError) Error() string { return e.msg }
func (e *invalidTaskError) Unwrap() error { return ErrInvalidTask }

// TaskError describes a task that ended Failed or Cancelled. TaskResult.Err returns it.
type TaskError struct {
	ID      TaskID
	State   TaskState
	Message string // the last error, for a Failed task
	Err     error  // a *DependencyError if a dependency failed the task, else nil
}

func (e *TaskError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("paas: task %s %s", e.ID, e.State)
	}
	return fmt.Sprintf("paas: task %s %s: %s", e.ID, e.State, e.Message)
}

func (e *TaskError) Unwrap() error { return e.Err }

// DependencyError says which dependency kept a task from running: it ended Failed or
// Cancelled (or, at Submit, had already).
type DependencyError struct {
	ID    TaskID
	State TaskState // the dependency's state, where known
}

func (e *DependencyError) Error() string {
	if e.State == 0 {
		return fmt.Sprintf("paas: dependency %s did not complete", e.ID)
	}
	return fmt.Sprintf("paas: dependency %s %s", e.ID, e.State)
}

// AbandonedError is returned by ProverService.Stop when its ctx ended and some handlers did
// not return even after their contexts were cancelled (an in-process prover that cannot be
// interrupted, say), or the store's writes did not end. Stop returns without them;
// ProverService.Stopped is closed once they have ended. Their tasks stay InProgress in the
// store until then, and a task still so at the next Start is recovered as interrupted.
// errors.Is(err, ctx.Err()) holds.
type AbandonedError struct {
	Handlers int   // how many handlers were still running when Stop returned; 0: a write was
	Err      error // the ctx error that ended Stop's wait
}

func (e *AbandonedError) Error() string {
	if e.Handlers == 0 {
		return fmt.Sprintf("paas: stop: the store's writes still in flight: %v", e.Err)
	}
	return fmt.Sprintf("paas: stop: %d handlers abandoned, still running after cancellation: %v", e.Handlers, e.Err)
}

func (e *AbandonedError) Unwrap() error { return e.Err }

// PermanentError marks a handler error that retrying cannot fix. Build it with Permanent.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so that the task fails at once, without retries. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// RetryAfterError asks for a retry after Delay instead of the backoff delay. Build it with RetryAfter.
type RetryAfterError struct {
	Err   error
	Delay time.Duration
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("retry after %s: %v", e.Delay, e.Err)
}
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter wraps err so that the task is retried after d (for example when a remote prover
// says when it has capacity again). The retry still counts against Config.Retry.MaxRetries.
// RetryAfter(nil, d) is nil; a negative d counts as 0.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &RetryAfterError{Err: err, Delay: max(d, 0)}
}

// NotReadyError says that a task's input is not ready yet. Build it with NotReady.
type NotReadyError struct {
	Err   error
	After time.Duration
}

func (e *NotReadyError) Error() string {
	return fmt.Sprintf("input not ready, look again after %s: %v", e.After, e.Err)
}
func (e *NotReadyError) Unwrap() error { return e.Err }

// NotReady wraps err to say that the task's input is not ready yet (a block not yet final, a
// batch not yet sealed): the task is Blocked and looked at again after d, without spending its
// retry budget. Config.MaxInputWait bounds how long a task may wait so in all; past it the task
// fails. NotReady(nil, d) is nil; a negative d counts as 0.
func NotReady(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &NotReadyError{Err: err, After: max(d, 0)}
}

// RestartError asks for the next attempt to start fresh. Build it with Restart.
type RestartError struct{ Err error }

func (e *RestartError) Error() string { return "restart: " + e.Err.Error() }
func (e *RestartError) Unwrap() error { return e.Err }

// Restart wraps err to say that the task's checkpoint is useless (a remote proof request that
// was lost or rejected): the checkpoint is discarded and the task is retried from scratch. Such
// failures count against Retry.MaxRestarts, not MaxRetries; any other transient error keeps the
// checkpoint for the next attempt to resume from. Restart(nil) is nil.
func Restart(err error) error {
	if err == nil {
		return nil
	}
	return &RestartError{Err: err}
}

// PanicError is the error recorded for a handler that panicked. The task fails without retries.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("handler panicked: %v", e.Value) }
