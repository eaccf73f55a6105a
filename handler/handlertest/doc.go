// Package handlertest runs a handler on a program as the paas service would, without starting
// a service, so that a handler's tests can see what the service would make of what it returns.
//
// # One attempt
//
// Run encodes the program as Submit would, gives the handler the paas.Task of one attempt, with
// a context that carries the task and a SaveCheckpoint that records what it saves, and returns
// a Result: the error the handler returned, and what the service would make of it, judged by
// the service's own rules (it is the same code):
//
//	res, err := handlertest.Run(ctx, h, FibProgram{N: 10}, paas.BackendNative)
//	if err != nil {
//		t.Fatal(err) // the service would have refused the program at Submit
//	}
//	if res.Outcome != paas.Completed {
//		t.Fatalf("outcome %s: %v", res.Outcome, res.Err)
//	}
//
// A handler that stores proofs is given a store of package store/memory, and the test reads
// the proof back under res.Task.ID.
//
// # What the service would do next
//
// Result.Outcome is the task's next state: Completed for nil, Failed for an error wrapped with
// paas.Permanent or for a panic, Retrying for other errors while the retry budget lasts,
// Blocked for paas.NotReady, and Cancelled when Run's ctx ends during the attempt.
// Result.RetryIn says when the next attempt would come, and Result.LastError what
// ProverHandle.Status would report. The budget is the one of WithRetry
// (paas.DefaultRetryConfig by default): WithAttempt(4) makes the fourth attempt, after which a
// transient error fails the task under the default three retries.
//
// # Checkpoints across attempts
//
// Every checkpoint the handler saves is in Result.Checkpoints, and Result.NextCheckpoint is
// what the service would give the next attempt. A test of a handler that resumes makes the
// attempts one after the other:
//
//	first, _ := handlertest.Run(ctx, h, program, paas.BackendSP1)
//	// first.Outcome is Retrying: the remote proof is not done yet; its request id was saved.
//	second, _ := handlertest.Run(ctx, h, program, paas.BackendSP1,
//		handlertest.WithTaskID(first.Task.ID),
//		handlertest.WithAttempt(2),
//		handlertest.WithCheckpoint(first.NextCheckpoint))
//	// second.Outcome is Completed, and the handler paid for one request, not two.
//
// # Dependencies
//
// WithDependsOn gives the task dependencies (Task.DependsOn), whose proofs the handler reads
// with handler.DependencyProofs from its own proof store. The service runs a task only once
// its dependencies have completed, so the test stores their proofs there first.
//
// # What Run does not do
//
// Run makes one attempt and nothing else: it does not retry, wait, persist, or count the
// retry budget across calls (WithAttempt says which attempt it is). It judges the attempt as
// if the task's earlier attempts had all failed transiently. To test the service itself with a
// handler, run a service on store/memory with a clock.Fake.
package handlertest
