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
//   - Any other error is transient: the task is retried with backoff until the retry budget
//     runs out.
//   - Return promptly when ctx is cancelled. The service cancels it when the task is
//     cancelled and when the service stops; a handler that ignores it holds up Stop.
//   - A panic is recovered by the service and fails the task without retries.
//   - Execution is at-least-once: a crash or Stop after the proof is stored but before Prove
//     returns runs the task again, so storing a proof must be idempotent.
type ProofHandler interface {
	Prove(ctx context.Context, task paas.Task) error
}

// ProofHandlerFunc adapts a function to a ProofHandler.
type ProofHandlerFunc func(ctx context.Context, task paas.Task) error

// Prove implements ProofHandler by calling f.
func (f ProofHandlerFunc) Prove(ctx context.Context, task paas.Task) error { return f(ctx, task) }

// Proof is what a Host produces for one program.
type Proof struct {
	// Backend is the backend that produced the proof.
	Backend paas.Backend
	// Receipt is the backend's proof bytes. It is empty for paas.BackendNative, which runs the
	// program without proving it.
	Receipt []byte
	// PublicValues is the program's public output, committed to by the proof.
	PublicValues []byte
}
