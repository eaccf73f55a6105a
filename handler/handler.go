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

// ProofStorer stores proofs. The service runs tasks at least once, so StoreProof may be called
// again for a task whose proof is already stored, and must then succeed.
type ProofStorer interface {
	StoreProof(ctx context.Context, id paas.TaskID, proof Proof) error
}

// ProofStorerFunc adapts a function to a ProofStorer.
type ProofStorerFunc func(ctx context.Context, id paas.TaskID, proof Proof) error

// StoreProof implements ProofStorer by calling f.
func (f ProofStorerFunc) StoreProof(ctx context.Context, id paas.TaskID, proof Proof) error {
	return f(ctx, id, proof)
}
