// Package service runs proof tasks: ProverService owns the tasks and their workers, and
// ProverHandle is how the rest of a program submits, waits for, inspects and cancels them.
//
// The smallest complete use:
//
//	svc, err := service.New(paas.Config{
//		Workers: map[paas.Backend]int64{paas.BackendNative: 2},
//	}, memory.New(), map[paas.RoutingKey]handler.ProofHandler{"fib": fibHandler})
//	if err != nil { ... }
//	if err := svc.Start(ctx); err != nil { ... }
//	defer svc.Stop(context.Background())
//	res, err := svc.Handle().Execute(ctx, fibProgram{N: 10}, paas.BackendNative)
//
// One goroutine, the service loop, owns every unfinished task and takes commands from handles
// over a channel; handlers run on goroutines of their own, at most Config.Workers[backend]
// units of weight at a time, highest priority first; a scheduler goroutine hands back the
// tasks whose retry or input is due and the attempts whose deadline has passed; and a writer
// goroutine persists every change through the TaskStore, many at a time (group commit),
// before the loop makes it visible. Tasks wait for their dependencies without polling: the
// end of a task wakes the tasks blocked on it. The caller's duties: call Start before using
// the handle, and Stop before exit; handlers must return when their context is cancelled.
//
// # Where things are
//
// runtime.go holds ProverService, its lifecycle (New, Start, Stop) and its loop; writer.go
// the writer goroutine; handle.go ProverHandle; identity.go how a program becomes a task
// record. The synchronous core, which starts no goroutines and does no I/O, is core in
// state.go (its type, load and settle), task.go (what it holds of a task), commands.go (its
// side of every command a handle or a handler's SaveCheckpoint sends), attempts.go
// (dispatch, launch, the end of an attempt), commit.go (what a stored write makes visible),
// rewrite.go (updates written again after a failure) and queue.go (the per-backend queue). How an attempt's error is sorted, and the
// causes the service cancels a handler's context with, are internal/attempt's, shared with
// handler/handlertest.
package service
