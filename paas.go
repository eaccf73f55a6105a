// Package paas is Prover-as-a-Service: an embeddable library that runs zero-knowledge proof
// generation tasks for a prover node (a rollup, a bridge, a checkpointing service).
//
// You describe your proof programs and plug in how to fetch a proof's input, how to prove it on
// a backend (SP1, Risc0, native execution, or your own) and how to store the proof; paas accepts
// tasks, runs them on per-backend worker pools, retries what failed with backoff, persists every
// task through a TaskStore so that nothing is lost across restarts, and reports status.
//
// # The smallest complete use
//
//	type Fib struct{ N int }
//
//	func (Fib) RoutingKey() paas.RoutingKey { return "fib" }
//
//	svc, err := service.New(paas.Config{
//		Workers: map[paas.Backend]int64{paas.BackendNative: 2},
//	}, memory.New(), map[paas.RoutingKey]handler.ProofHandler{
//		"fib": handler.ProofHandlerFunc(func(ctx context.Context, t paas.Task) error {
//			var p Fib
//			if err := json.Unmarshal(t.Program, &p); err != nil {
//				return paas.Permanent(err) // retrying cannot fix it
//			}
//			return proveAndStore(ctx, t.ID, p) // a plain error is retried with backoff
//		}),
//	})
//	if err != nil { ... }
//	if err := svc.Start(ctx); err != nil { ... }
//	defer svc.Stop(context.Background())
//	res, err := svc.Handle().Execute(ctx, Fib{N: 10}, paas.BackendNative)
//
// # The caller's duties
//
//   - Programs must encode deterministically: the encoding, routing key and backend identify a
//     task, and a second Submit of an equal program returns the first task.
//   - Handlers return nil only once the proof is stored, wrap errors that retrying cannot fix
//     with Permanent, and return when their context is cancelled. A task may run more than once
//     (a crash between proving and recording the outcome), so storing a proof must be idempotent.
//   - Start the service before using its handle; Stop it before the process exits, with a
//     context that bounds how long running proofs may take to finish.
//
// # Where things are
//
// This package holds the shared vocabulary, each concept in the file named after it: task.go
// (TaskID, TaskState, Task, TaskStatus, TaskResult, StatusSummary), program.go (ProgramType,
// Backend, RoutingKey, Codec, TaskKey), options.go (the options of Submit), config.go (Config,
// RetryConfig), persistence.go (TaskRecord, TaskStore, BatchStore, and the proof store's
// Proof, ProofStorer and ProofReader) and errors.go (the errors, and the wrappers handlers
// return: Permanent, RetryAfter, NotReady, Restart; and the causes of a handler's context
// ending: ErrCancelled, ErrInterrupted, ErrTimedOut).
//
// Package service runs tasks (ProverService, ProverHandle); package handler has ProofHandler
// and the pieces of RemoteProofHandler, and handler/handlertest runs a handler in a test as
// the service would; the hosts that prove are handler/gnarkhost (gnark circuits, in process
// or in a prover process) and handler/exechost (a prover that is a program, such as an SP1
// or Risc0 host); scheduler has the RetryScheduler; store/bolt is the durable store;
// store/memory is an in-memory store for tests; store/storetest is the conformance suite for
// stores; clock has a fake clock for tests. internal/ holds what the packages share and users
// must not import.
package paas
