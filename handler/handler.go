package handler

import (
	"context"

	"github.com/zkpaas/paas"
)

// ProofHandler proves the tasks of one routing key. The service calls Prove once per attempt,
// possibly from several workers at once, so implementations must be safe for concurrent use.
//
// The service relies on this contract:
//
//   - Return nil once the proof is stored: the task is then Completed.
//   - Wrap errors that retrying cannot fix with paas.Permanent: the task fails at once.
//   - Wrap an error with paas.RetryAfter(err, d) to choose the delay before the next attempt,
//     for example when a remote prover says when it has capacity again.
//   - Wrap an error with paas.NotReady(err, d) when the input is not ready yet (a block not
//     final): the task is Blocked and looked at again after d, spending no retry, for at most
//     Config.MaxInputWait in all.
//   - Save a small checkpoint with task.SaveCheckpoint (the id of a request made to a remote
//     prover) to pick the work up on the next attempt, even after a restart: it comes back
//     in task.Checkpoint. Wrap an error with paas.Restart when the checkpoint is useless (the
//     request was lost): it is discarded, and the attempt counts against Retry.MaxRestarts.
//   - Any other error is transient: the task is retried with backoff, keeping its
//     checkpoint, until the retry budget runs out.
//   - Return promptly when ctx is cancelled. The service cancels it when the task is
//     cancelled, when its timeout runs out, and when the service stops; a handler that
//     ignores it is abandoned by Stop, and its task is recovered as interrupted.
//   - A panic is recovered by the service and fails the task without retries.
//   - Execution is at-least-once: a crash or Stop after the proof is stored but before Prove
//     returns runs the task again (task.Attempt counts every attempt), so storing a proof
//     must be idempotent, and checking for a stored proof first spares a second one, as
//     RemoteProofHandler does.
type ProofHandler interface {
	Prove(ctx context.Context, task paas.Task) error
}

// ProofHandlerFunc adapts a function to a ProofHandler.
type ProofHandlerFunc func(ctx context.Context, task paas.Task) error

// Prove implements ProofHandler by calling f.
func (f ProofHandlerFunc) Prove(ctx context.Context, task paas.Task) error { return f(ctx, task) }

// InputFetcher fetches the input a program is proven on, such as blocks or a witness.
// Its errors are transient unless wrapped with paas.Permanent.
type InputFetcher[P, I any] interface {
	FetchInput(ctx context.Context, program P) (I, error)
}

// InputFetcherFunc adapts a function to an InputFetcher.
type InputFetcherFunc[P, I any] func(ctx context.Context, program P) (I, error)

// FetchInput implements InputFetcher by calling f.
func (f InputFetcherFunc[P, I]) FetchInput(ctx context.Context, program P) (I, error) {
	return f(ctx, program)
}
