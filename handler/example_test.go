package handler_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"strconv"
	"sync"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
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

func ExampleRemoteProofHandler() {
	var (
		mu     sync.Mutex
		proofs = map[paas.TaskID]paas.Proof{}
	)
	h := &handler.RemoteProofHandler[fibProgram, int]{
		// A real fetcher would load blocks or a witness; fib's input is just N.
		Fetcher: handler.InputFetcherFunc[fibProgram, int](func(_ context.Context, p fibProgram) (int, error) {
			return p.N, nil
		}),
		Hosts: handler.HostMap[int]{
			paas.BackendNative: handler.NativeHost[int]{Run: func(_ context.Context, n int) ([]byte, error) {
				return []byte(strconv.Itoa(fib(n))), nil
			}},
		},
		// Storing under the task ID makes a repeated attempt overwrite, not duplicate.
		Storer: paas.ProofStorerFunc(func(_ context.Context, id paas.TaskID, p paas.Proof) error {
			mu.Lock()
			defer mu.Unlock()
			proofs[id] = p
			return nil
		}),
	}
	if err := h.Validate(); err != nil {
		log.Fatal(err)
	}

	// The service encodes the program with its Codec (JSON by default) and calls Prove.
	program, err := json.Marshal(fibProgram{N: 10})
	if err != nil {
		log.Fatal(err)
	}
	task := paas.Task{ID: paas.NewTaskID(), RoutingKey: "fib", Backend: paas.BackendNative, Program: program, Attempt: 1}
	if err := h.Prove(context.Background(), task); err != nil {
		log.Fatal(err)
	}

	p := proofs[task.ID]
	fmt.Printf("%s: fib(10) = %s, receipt %d bytes\n", p.Backend, p.PublicValues, len(p.Receipt))
	// Output:
	// native: fib(10) = 55, receipt 0 bytes
}

func ExampleProofHandlerFunc() {
	h := handler.ProofHandlerFunc(func(_ context.Context, task paas.Task) error {
		var p fibProgram
		if err := json.Unmarshal(task.Program, &p); err != nil {
			// Retrying cannot fix a program that does not decode.
			return paas.Permanent(err)
		}
		fmt.Printf("fib(%d) = %d\n", p.N, fib(p.N))
		return nil
	})

	_ = h.Prove(context.Background(), paas.Task{Program: []byte(`{"N":20}`)})
	err := h.Prove(context.Background(), paas.Task{Program: []byte(`nonsense`)})
	_, permanent := errors.AsType[*paas.PermanentError](err)
	fmt.Println("permanent:", permanent)
	// Output:
	// fib(20) = 6765
	// permanent: true
}

// loggingHandler logs every attempt of the handler it wraps. Wrapping needs no framework: it
// is a plain struct holding the inner ProofHandler.
type loggingHandler struct {
	next handler.ProofHandler
	log  *log.Logger
}

func (h loggingHandler) Prove(ctx context.Context, task paas.Task) error {
	err := h.next.Prove(ctx, task)
	if err != nil {
		h.log.Printf("%s attempt %d: %v", task.RoutingKey, task.Attempt, err)
		return err // returned unchanged, so the service still sees Permanent or RetryAfter
	}
	h.log.Printf("%s attempt %d: proved", task.RoutingKey, task.Attempt)
	return nil
}

func Example_wrapping() {
	flaky := handler.ProofHandlerFunc(func(_ context.Context, task paas.Task) error {
		if task.Attempt == 1 {
			return errors.New("prover unreachable")
		}
		return nil
	})
	h := loggingHandler{next: flaky, log: log.New(os.Stdout, "", 0)}

	// The service would make these attempts, with a backoff between them.
	for attempt := 1; attempt <= 2; attempt++ {
		_ = h.Prove(context.Background(), paas.Task{RoutingKey: "fib", Attempt: attempt})
	}
	// Output:
	// fib attempt 1: prover unreachable
	// fib attempt 2: proved
}

func ExampleDependencyProofs() {
	ctx := context.Background()
	proofs := memory.NewProofStore()
	a, b := paas.NewTaskID(), paas.NewTaskID()
	for id, sum := range map[paas.TaskID]string{a: "1275", b: "3775"} {
		if err := proofs.StoreProof(ctx, id, paas.Proof{Backend: paas.BackendNative, PublicValues: []byte(sum)}); err != nil {
			log.Fatal(err)
		}
	}

	// The service gives every handler a context that carries its task; a test builds one.
	task := paas.Task{ID: paas.NewTaskID(), RoutingKey: "checkpoint", DependsOn: []paas.TaskID{a, b}}
	deps, err := handler.DependencyProofs(paas.ContextWithTask(ctx, task), proofs)
	if err != nil {
		log.Fatal(err)
	}
	for i, p := range deps { // in the order of task.DependsOn
		fmt.Printf("dependency %d: %s\n", i+1, p.PublicValues)
	}

	_, err = handler.DependencyProofs(ctx, proofs)
	fmt.Println("outside a handler:", errors.Is(err, handler.ErrNoTask))
	// Output:
	// dependency 1: 1275
	// dependency 2: 3775
	// outside a handler: true
}
