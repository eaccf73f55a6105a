// Package handler holds the proof handlers that the paas service runs, and the pieces to build
// them from.
//
// # What the service calls
//
// A ProofHandler is registered with the service under a routing key. For every attempt of a
// task the service calls its Prove with a paas.Task: the task's ID, backend, attempt number and
// the program as encoded by the service's paas.Codec. The returned error tells the service what
// to do next: nil completes the task, an error wrapped with paas.Permanent fails it, one wrapped
// with paas.RetryAfter is retried after the given delay, paas.NotReady waits for the input,
// paas.Restart discards the checkpoint, and any other error is retried with backoff (the
// ProofHandler doc has the whole contract). A plain function becomes a handler with
// ProofHandlerFunc.
//
// # Fetch, prove, store
//
// Most handlers fetch an input, prove it and store the proof, so RemoteProofHandler does that
// for any program type P and input type I, in five steps:
//
//  1. decode task.Program into a P with its Codec;
//  2. pick the Host that proves on task.Backend from its Hosts, a HostMap (or, when the
//     host depends on the program too, with its Resolver);
//  3. fetch the program's input with its InputFetcher (blocks, state, witnesses...);
//  4. prove the input on the host, which returns a paas.Proof;
//  5. store the proof under the task ID with its paas.ProofStorer.
//
// Each piece is a one-method interface with a Func adapter, so a closure will do:
//
//	h := &handler.RemoteProofHandler[FibProgram, int]{
//		Fetcher: handler.InputFetcherFunc[FibProgram, int](func(ctx context.Context, p FibProgram) (int, error) {
//			return p.N, nil
//		}),
//		Hosts: handler.HostMap[int]{
//			paas.BackendSP1:    sp1Host,
//			paas.BackendNative: handler.NativeHost[int]{Run: runFib},
//		},
//		Storer: proofs, // a paas.ProofStorer backed by your database
//	}
//
// NativeHost runs a program without proving it, which is useful for tests and for checking a
// program's output cheaply.
//
// RemoteProofHandler does not log: it returns every error wrapped with short context, so that
// a paas.Permanent or paas.RetryAfter returned by a fetcher, host or storer still reaches the
// service, which records it.
//
// # Wrapping
//
// Cross-cutting behaviour such as logging, metrics or rate limiting is added by wrapping: a
// plain struct that holds the inner ProofHandler and implements Prove by calling it. See
// Example_wrapping.
//
// # Where things are
//
// handler.go holds ProofHandler and the interfaces RemoteProofHandler is built from
// (InputFetcher); host.go the hosts (Host, HostResolver, HostMap, NativeHost); remote.go
// RemoteProofHandler; dependencies.go DependencyProofs. The proof types (paas.Proof,
// paas.ProofStorer, paas.ProofReader) are the root package's, which the stores implement.
// Package exechost has a Host that runs a prover program per proof; package bonsai a Host
// that proves on Risc0's Bonsai (or a Bento) and resumes its session after a restart, with a
// fake server for tests in bonsai/bonsaitest; package handlertest runs a handler as the
// service would, in a test.
package handler
