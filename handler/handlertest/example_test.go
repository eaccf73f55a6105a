package handlertest_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strconv"
	"time"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/handler/handlertest"
	"github.com/zkpaas/paas/store/memory"
)

// fibProgram asks for the N-th Fibonacci number.
type fibProgram struct{ N int }

func (fibProgram) RoutingKey() paas.RoutingKey { return "fib" }

func fib(n int) int {
	a, b := 0, 1
	for range n {
		a, b = b, a+b
	}
	return a
}

func Example() {
	ctx := context.Background()
	proofs := memory.NewProofStore()
	h := &handler.RemoteProofHandler[fibProgram, int]{
		Fetcher: handler.InputFetcherFunc[fibProgram, int](func(_ context.Context, p fibProgram) (int, error) {
			return p.N, nil
		}),
		Hosts: handler.HostMap[int]{
			paas.BackendNative: handler.NativeHost[int]{Run: func(_ context.Context, n int) ([]byte, error) {
				return []byte(strconv.Itoa(fib(n))), nil
			}},
		},
		Storer: proofs,
	}

	res, err := handlertest.Run(ctx, h, fibProgram{N: 10}, paas.BackendNative)
	if err != nil {
		log.Fatal(err)
	}
	proof, err := proofs.Proof(ctx, res.Task.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, fib(10) = %s\n", res.Outcome, proof.PublicValues)

	// A backend the handler has no host for: retrying cannot help.
	res, err = handlertest.Run(ctx, h, fibProgram{N: 10}, paas.BackendSP1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Outcome, errors.Is(res.Err, handler.ErrNoHost))
	// Output:
	// completed, fib(10) = 55
	// failed true
}

func ExampleRun_outcomes() {
	ctx := context.Background()
	errRPC := errors.New("rpc down")
	for _, tc := range []struct {
		err     error
		attempt int
	}{
		{nil, 1},
		{errRPC, 1},
		{errRPC, 2},
		{errRPC, 4}, // the default budget is 3 retries
		{paas.Permanent(errRPC), 1},
		{paas.RetryAfter(errRPC, time.Minute), 1},
		{paas.NotReady(errRPC, 10*time.Second), 1},
		{paas.Restart(errRPC), 1},
	} {
		h := handler.ProofHandlerFunc(func(context.Context, paas.Task) error { return tc.err })
		res, err := handlertest.Run(ctx, h, fibProgram{N: 1}, paas.BackendNative, handlertest.WithAttempt(tc.attempt))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("attempt %d: %-9s in %-4s %q\n", tc.attempt, res.Outcome, res.RetryIn, res.LastError)
	}
	// Output:
	// attempt 1: completed in 0s   ""
	// attempt 1: retrying  in 1s   "rpc down"
	// attempt 2: retrying  in 2s   "rpc down"
	// attempt 4: failed    in 0s   "rpc down (gave up after 4 attempts)"
	// attempt 1: failed    in 0s   "permanent: rpc down"
	// attempt 1: retrying  in 1m0s "retry after 1m0s: rpc down"
	// attempt 1: blocked   in 10s  "input not ready, look again after 10s: rpc down"
	// attempt 1: retrying  in 1s   "restart: rpc down"
}

// remoteNetwork is a proving network that takes a while: a request is done once finish says so.
type remoteNetwork struct {
	requests int
	done     map[string]bool
}

func (n *remoteNetwork) request() string {
	n.requests++
	id := "req-" + strconv.Itoa(n.requests)
	n.done[id] = false
	return id
}

// remoteHandler pays for one proof request per task: the request's id is its checkpoint, so
// that a later attempt polls the request instead of paying for a new one.
func remoteHandler(network *remoteNetwork) handler.ProofHandler {
	return handler.ProofHandlerFunc(func(ctx context.Context, task paas.Task) error {
		req := string(task.Checkpoint)
		if req == "" {
			req = network.request()
			if err := task.SaveCheckpoint(ctx, []byte(req)); err != nil {
				return err
			}
		}
		if !network.done[req] {
			return paas.RetryAfter(fmt.Errorf("%s not done", req), 30*time.Second)
		}
		return nil // a real handler stores the proof first
	})
}

func Example_checkpoint() {
	ctx := context.Background()
	network := &remoteNetwork{done: map[string]bool{}}
	h := remoteHandler(network)

	first, err := handlertest.Run(ctx, h, fibProgram{N: 1000}, paas.BackendSP1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("attempt 1: %s in %s, saved %q\n", first.Outcome, first.RetryIn, first.Checkpoints)

	network.done["req-1"] = true
	second, err := handlertest.Run(ctx, h, fibProgram{N: 1000}, paas.BackendSP1,
		handlertest.WithTaskID(first.Task.ID),
		handlertest.WithAttempt(2),
		handlertest.WithCheckpoint(first.NextCheckpoint))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("attempt 2: %s, saved %q\n", second.Outcome, second.Checkpoints)
	fmt.Println("requests paid for:", network.requests)
	// Output:
	// attempt 1: retrying in 30s, saved ["req-1"]
	// attempt 2: completed, saved []
	// requests paid for: 1
}

// sumProgram sums the public values of the proofs it depends on, as a checkpoint proof
// aggregates the proofs of its range.
type sumProgram struct{ Epoch int }

func (sumProgram) RoutingKey() paas.RoutingKey { return "sum" }

func Example_dependencyProofs() {
	ctx := context.Background()
	proofs := memory.NewProofStore()
	h := handler.ProofHandlerFunc(func(ctx context.Context, task paas.Task) error {
		deps, err := handler.DependencyProofs(ctx, proofs)
		if err != nil {
			return err
		}
		sum := 0
		for _, p := range deps {
			n, err := strconv.Atoi(string(p.PublicValues))
			if err != nil {
				return paas.Permanent(err)
			}
			sum += n
		}
		return proofs.StoreProof(ctx, task.ID, paas.Proof{Backend: task.Backend, PublicValues: []byte(strconv.Itoa(sum))})
	})

	// The service runs a task once its dependencies have completed: their proofs are stored.
	a, b := paas.NewTaskID(), paas.NewTaskID()
	for id, v := range map[paas.TaskID]string{a: "1275", b: "3775"} {
		if err := proofs.StoreProof(ctx, id, paas.Proof{Backend: paas.BackendNative, PublicValues: []byte(v)}); err != nil {
			log.Fatal(err)
		}
	}
	res, err := handlertest.Run(ctx, h, sumProgram{Epoch: 7}, paas.BackendNative, handlertest.WithDependsOn(a, b))
	if err != nil {
		log.Fatal(err)
	}
	sum, err := proofs.Proof(ctx, res.Task.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %s\n", res.Outcome, sum.PublicValues)

	// A dependency whose proof is missing is the proof store's error, retried.
	res, err = handlertest.Run(ctx, h, sumProgram{Epoch: 8}, paas.BackendNative, handlertest.WithDependsOn(a, paas.NewTaskID()))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Outcome, errors.Is(res.Err, paas.ErrProofNotFound))
	// Output:
	// completed: 5050
	// retrying true
}
