package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/clock"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/service"
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

// nativeOnly is the smallest Config: one worker for the native backend.
func nativeOnly() paas.Config {
	return paas.Config{Workers: map[paas.Backend]int64{paas.BackendNative: 1}}
}

func ExampleProverHandle_Submit() {
	ctx := context.Background()
	var runs atomic.Int64
	prove := handler.ProofHandlerFunc(func(context.Context, paas.Task) error {
		runs.Add(1)
		return nil
	})
	svc, err := service.New(nativeOnly(), memory.New(), map[paas.RoutingKey]handler.ProofHandler{"fib": prove})
	if err != nil {
		log.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer svc.Stop(ctx)
	h := svc.Handle()

	id, err := h.Submit(ctx, fibProgram{N: 10}, paas.BackendNative)
	if err != nil {
		log.Fatal(err)
	}
	// The same program on the same backend is the same task, whatever its state.
	again, err := h.Submit(ctx, fibProgram{N: 10}, paas.BackendNative)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same id:", again == id)

	res, err := h.Wait(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s after %d attempt; the handler ran %d time\n", res.State, res.Attempts, runs.Load())
	// Output:
	// same id: true
	// completed after 1 attempt; the handler ran 1 time
}

func ExampleProverHandle_Execute() {
	ctx := context.Background()
	proofs := memory.NewProofStore()
	fibHandler := &handler.RemoteProofHandler[fibProgram, int]{
		// fib's input is just N; a real fetcher would load blocks or a witness.
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
	svc, err := service.New(nativeOnly(), memory.New(), map[paas.RoutingKey]handler.ProofHandler{"fib": fibHandler})
	if err != nil {
		log.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer svc.Stop(ctx)

	res, err := svc.Handle().Execute(ctx, fibProgram{N: 10}, paas.BackendNative)
	if err != nil {
		log.Fatal(err)
	}
	proof, err := proofs.Proof(ctx, res.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: fib(10) = %s\n", res.State, proof.PublicValues)
	// Output:
	// completed: fib(10) = 55
}

// Example_retries drives retries with a fake clock: the handler fails transiently twice, and
// the example moves time to each retry instead of sleeping.
func Example_retries() {
	ctx := context.Background()
	prove := handler.ProofHandlerFunc(func(_ context.Context, task paas.Task) error {
		var p fibProgram
		if err := json.Unmarshal(task.Program, &p); err != nil {
			return paas.Permanent(err)
		}
		if p.N < 0 {
			// Retrying cannot fix a bad program: fail at once.
			return paas.Permanent(fmt.Errorf("fib(%d): negative input", p.N))
		}
		if task.Attempt < 3 {
			fmt.Printf("attempt %d: prover busy\n", task.Attempt)
			return errors.New("prover busy") // a plain error is transient
		}
		fmt.Printf("attempt %d: proved\n", task.Attempt)
		return nil
	})

	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fake := clock.NewFake(start)
	cfg := nativeOnly()
	cfg.Clock = fake
	// No Jitter, so the delays are exactly 1s, then 2s.
	cfg.Retry = &paas.RetryConfig{MaxRetries: 3, BaseDelay: time.Second, Jitter: paas.Disabled}
	svc, err := service.New(cfg, memory.New(), map[paas.RoutingKey]handler.ProofHandler{"fib": prove})
	if err != nil {
		log.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer svc.Stop(ctx)
	h := svc.Handle()

	id, err := h.Submit(ctx, fibProgram{N: 10}, paas.BackendNative)
	if err != nil {
		log.Fatal(err)
	}
	for range 2 {
		// Once the retry's timer is armed, the task is Retrying.
		if err := fake.WaitForTimers(ctx, 1); err != nil {
			log.Fatal(err)
		}
		st, err := h.Status(ctx, id)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("  %s (%s), next attempt at +%s\n", st.State, st.LastError, st.NextAttemptAt.Sub(start))
		fake.Advance(st.NextAttemptAt.Sub(fake.Now()))
	}
	res, err := h.Wait(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s after %d attempts\n", res.State, res.Attempts)

	// A permanent error fails the task at once, whatever the retry budget.
	res, err = h.Execute(ctx, fibProgram{N: -1}, paas.BackendNative)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s after %d attempt: %s\n", res.State, res.Attempts, res.Error)
	// Output:
	// attempt 1: prover busy
	//   retrying (prover busy), next attempt at +1s
	// attempt 2: prover busy
	//   retrying (prover busy), next attempt at +3s
	// attempt 3: proved
	// completed after 3 attempts
	// failed after 1 attempt: permanent: fib(-1): negative input
}

// auditHandler wraps another ProofHandler, counting and printing its attempts. Logging, metrics
// or rate limiting are added the same way: a plain struct holding the inner handler.
type auditHandler struct {
	next     handler.ProofHandler
	attempts atomic.Int64
}

func (h *auditHandler) Prove(ctx context.Context, task paas.Task) error {
	h.attempts.Add(1)
	err := h.next.Prove(ctx, task)
	outcome := "ok"
	if err != nil {
		outcome = err.Error()
	}
	fmt.Printf("%s %s attempt %d: %s\n", task.RoutingKey, task.Program, task.Attempt, outcome)
	// Returned unchanged, so that the service still sees paas.Permanent and paas.RetryAfter.
	return err
}

func Example_customHandler() {
	ctx := context.Background()
	inner := handler.ProofHandlerFunc(func(_ context.Context, task paas.Task) error {
		var p fibProgram
		if err := json.Unmarshal(task.Program, &p); err != nil {
			return paas.Permanent(err)
		}
		if p.N < 0 {
			return paas.Permanent(errors.New("negative input"))
		}
		return nil
	})
	audited := &auditHandler{next: inner}

	// The wrapper is plugged in under the routing key like any other handler.
	svc, err := service.New(nativeOnly(), memory.New(), map[paas.RoutingKey]handler.ProofHandler{"fib": audited})
	if err != nil {
		log.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer svc.Stop(ctx)

	for _, p := range []fibProgram{{N: 10}, {N: -1}} {
		res, err := svc.Handle().Execute(ctx, p, paas.BackendNative)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("  =>", res.State)
	}
	fmt.Println("attempts:", audited.attempts.Load())
	// Output:
	// fib {"N":10} attempt 1: ok
	//   => completed
	// fib {"N":-1} attempt 1: permanent: negative input
	//   => failed
	// attempts: 2
}
