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

// rangeProgram proves the blocks From to To. Its public value, the sum of the block numbers,
// stands in for the state root a real range proof commits to.
type rangeProgram struct{ From, To int }

func (rangeProgram) RoutingKey() paas.RoutingKey { return "range" }

// checkpointProgram aggregates the range proofs it is submitted After.
type checkpointProgram struct{ Epoch int }

func (checkpointProgram) RoutingKey() paas.RoutingKey { return "checkpoint" }

// Example_dependencies submits a checkpoint proof after the two range proofs it aggregates: it
// waits Blocked until both have completed, then its handler reads their proofs. A dependency
// that fails fails the checkpoint.
func Example_dependencies() {
	ctx := context.Background()
	proofs := memory.NewProofStore()
	finish := make(chan struct{}) // each send lets one range proof finish
	ranges := handler.ProofHandlerFunc(func(ctx context.Context, task paas.Task) error {
		var r rangeProgram
		if err := json.Unmarshal(task.Program, &r); err != nil {
			return paas.Permanent(err)
		}
		select {
		case <-finish:
		case <-ctx.Done():
			return ctx.Err()
		}
		if r.From > r.To {
			return paas.Permanent(fmt.Errorf("empty range %d-%d", r.From, r.To))
		}
		sum := (r.From + r.To) * (r.To - r.From + 1) / 2
		return proofs.StoreProof(ctx, task.ID, paas.Proof{Backend: task.Backend, PublicValues: []byte(strconv.Itoa(sum))})
	})
	checkpoint := handler.ProofHandlerFunc(func(ctx context.Context, task paas.Task) error {
		// The proofs of the task's dependencies, in the order given to paas.After.
		deps, err := handler.DependencyProofs(ctx, proofs)
		if err != nil {
			return err
		}
		total := 0
		for _, p := range deps {
			n, err := strconv.Atoi(string(p.PublicValues))
			if err != nil {
				return paas.Permanent(err)
			}
			fmt.Println("  aggregating", n)
			total += n
		}
		return proofs.StoreProof(ctx, task.ID, paas.Proof{Backend: task.Backend, PublicValues: []byte(strconv.Itoa(total))})
	})
	svc, err := service.New(nativeOnly(), memory.New(),
		map[paas.RoutingKey]handler.ProofHandler{"range": ranges, "checkpoint": checkpoint})
	if err != nil {
		log.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer svc.Stop(ctx)
	h := svc.Handle()

	a, err := h.Submit(ctx, rangeProgram{From: 1, To: 50}, paas.BackendNative)
	if err != nil {
		log.Fatal(err)
	}
	b, err := h.Submit(ctx, rangeProgram{From: 51, To: 100}, paas.BackendNative)
	if err != nil {
		log.Fatal(err)
	}
	cp, err := h.Submit(ctx, checkpointProgram{Epoch: 1}, paas.BackendNative, paas.After(a, b))
	if err != nil {
		log.Fatal(err)
	}
	st, err := h.Status(ctx, cp)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("checkpoint 1: %s on %d range proofs\n", st.State, len(st.DependsOn))

	// Both range proofs finish; the checkpoint can then run.
	finish <- struct{}{}
	finish <- struct{}{}
	res, err := h.Wait(ctx, cp)
	if err != nil {
		log.Fatal(err)
	}
	proof, err := proofs.Proof(ctx, cp)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("checkpoint 1: %s, total %s\n", res.State, proof.PublicValues)

	// A dependency that fails fails the tasks that wait for it.
	bad, err := h.Submit(ctx, rangeProgram{From: 200, To: 101}, paas.BackendNative)
	if err != nil {
		log.Fatal(err)
	}
	cp2, err := h.Submit(ctx, checkpointProgram{Epoch: 2}, paas.BackendNative, paas.After(bad))
	if err != nil {
		log.Fatal(err)
	}
	finish <- struct{}{}
	res, err = h.Wait(ctx, cp2)
	if err != nil {
		log.Fatal(err)
	}
	depErr, ok := errors.AsType[*paas.DependencyError](res.Err())
	fmt.Printf("checkpoint 2: %s; the failed dependency is the bad range: %t\n",
		res.State, ok && depErr.ID == bad)

	// Submit refuses a dependency that has already failed.
	_, err = h.Submit(ctx, checkpointProgram{Epoch: 3}, paas.BackendNative, paas.After(bad))
	depErr, ok = errors.AsType[*paas.DependencyError](err)
	fmt.Println("checkpoint 3 refused:", ok && depErr.State == paas.Failed)
	// Output:
	// checkpoint 1: blocked on 2 range proofs
	//   aggregating 1275
	//   aggregating 3775
	// checkpoint 1: completed, total 5050
	// checkpoint 2: failed; the failed dependency is the bad range: true
	// checkpoint 3 refused: true
}

// jobProgram is a task known by its name.
type jobProgram struct{ Name string }

func (jobProgram) RoutingKey() paas.RoutingKey { return "job" }

// Example_priority holds the one worker busy, queues tasks of several priorities behind it and
// prints the order in which they start: highest priority first, then in submission order.
func Example_priority() {
	ctx := context.Background()
	busy, release := make(chan struct{}), make(chan struct{})
	prove := handler.ProofHandlerFunc(func(ctx context.Context, task paas.Task) error {
		var j jobProgram
		if err := json.Unmarshal(task.Program, &j); err != nil {
			return paas.Permanent(err)
		}
		fmt.Println("start", j.Name)
		if j.Name == "long proof" {
			close(busy)
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	svc, err := service.New(nativeOnly(), memory.New(), map[paas.RoutingKey]handler.ProofHandler{"job": prove})
	if err != nil {
		log.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer svc.Stop(ctx)
	h := svc.Handle()

	long, err := h.Submit(ctx, jobProgram{Name: "long proof"}, paas.BackendNative)
	if err != nil {
		log.Fatal(err)
	}
	<-busy // the one worker is taken: the tasks below queue up
	ids := []paas.TaskID{long}
	for _, j := range []struct {
		name     string
		priority int
	}{{"backfill 1", -1}, {"routine", 0}, {"backfill 2", -1}, {"urgent", 10}} {
		id, err := h.Submit(ctx, jobProgram{Name: j.name}, paas.BackendNative, paas.Priority(j.priority))
		if err != nil {
			log.Fatal(err)
		}
		ids = append(ids, id)
	}
	close(release)
	for _, id := range ids {
		if _, err := h.Wait(ctx, id); err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// start long proof
	// start urgent
	// start routine
	// start backfill 1
	// start backfill 2
}

// blockProgram proves the block at Height, once it is final.
type blockProgram struct{ Height int }

func (blockProgram) RoutingKey() paas.RoutingKey { return "block" }

// Example_notReady waits for its input: the handler returns paas.NotReady until the block it
// proves is final, and the task is Blocked meanwhile, without spending its retry budget. A fake
// clock stands in for the chain, which makes a block final every minute.
func Example_notReady() {
	ctx := context.Background()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fake := clock.NewFake(start)
	head := func() int { return 100 + int(fake.Now().Sub(start)/time.Minute) } // the last final block
	prove := handler.ProofHandlerFunc(func(_ context.Context, task paas.Task) error {
		var b blockProgram
		if err := json.Unmarshal(task.Program, &b); err != nil {
			return paas.Permanent(err)
		}
		if head := head(); head < b.Height {
			fmt.Printf("attempt %d: head is %d, block %d not final\n", task.Attempt, head, b.Height)
			return paas.NotReady(fmt.Errorf("block %d not final", b.Height), time.Minute)
		}
		fmt.Printf("attempt %d: block %d proved\n", task.Attempt, b.Height)
		return nil
	})
	cfg := nativeOnly()
	cfg.Clock = fake
	svc, err := service.New(cfg, memory.New(), map[paas.RoutingKey]handler.ProofHandler{"block": prove})
	if err != nil {
		log.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer svc.Stop(ctx)
	h := svc.Handle()

	id, err := h.Submit(ctx, blockProgram{Height: 102}, paas.BackendNative)
	if err != nil {
		log.Fatal(err)
	}
	for range 2 {
		// Once the task's next look is scheduled, it is Blocked.
		if err := fake.WaitForTimers(ctx, 1); err != nil {
			log.Fatal(err)
		}
		st, err := h.Status(ctx, id)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("  %s, retry budget spent %d, looked at again at +%s\n", st.State, st.Attempts, st.NextAttemptAt.Sub(start))
		fake.Advance(time.Minute)
	}
	res, err := h.Wait(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, retry budget spent %d\n", res.State, res.Attempts)
	// Output:
	// attempt 1: head is 100, block 102 not final
	//   blocked, retry budget spent 0, looked at again at +1m0s
	// attempt 2: head is 101, block 102 not final
	//   blocked, retry budget spent 0, looked at again at +2m0s
	// attempt 3: block 102 proved
	// completed, retry budget spent 1
}

// Example_checkpoint pays for a remote proof only once. The first attempt requests the proof
// from a prover network, saves the request's id as the task's checkpoint, then loses its
// connection; the retry finds the id in task.Checkpoint and polls the request instead.
func Example_checkpoint() {
	ctx := context.Background()
	var paid atomic.Int64 // remote proof requests paid for
	prove := handler.ProofHandlerFunc(func(ctx context.Context, task paas.Task) error {
		if task.Checkpoint != nil {
			fmt.Printf("attempt %d: polling request %s: proof ready\n", task.Attempt, task.Checkpoint)
			return nil // a real handler would store the proof first
		}
		req := fmt.Sprintf("req-%d", paid.Add(1))
		fmt.Printf("attempt %d: paid for request %s\n", task.Attempt, req)
		if err := task.SaveCheckpoint(ctx, []byte(req)); err != nil {
			return err
		}
		// A transient error: the task is retried, and keeps its checkpoint.
		return errors.New("connection to the prover network lost")
	})

	fake := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg := nativeOnly()
	cfg.Clock = fake
	cfg.Retry = &paas.RetryConfig{MaxRetries: 3, BaseDelay: time.Second, Jitter: paas.Disabled} // 1s, no jitter
	svc, err := service.New(cfg, memory.New(), map[paas.RoutingKey]handler.ProofHandler{"fib": prove})
	if err != nil {
		log.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer svc.Stop(ctx)
	h := svc.Handle()

	id, err := h.Submit(ctx, fibProgram{N: 1000}, paas.BackendNative)
	if err != nil {
		log.Fatal(err)
	}
	if err := fake.WaitForTimers(ctx, 1); err != nil { // the retry is scheduled
		log.Fatal(err)
	}
	st, err := h.Status(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("  %s: %s\n", st.State, st.LastError)
	fake.Advance(time.Second)

	res, err := h.Wait(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s after %d attempts; requests paid for: %d\n", res.State, res.Attempts, paid.Load())
	// Output:
	// attempt 1: paid for request req-1
	//   retrying: connection to the prover network lost
	// attempt 2: polling request req-1: proof ready
	// completed after 2 attempts; requests paid for: 1
}

func ExampleProverHandle_Retry() {
	ctx := context.Background()
	var funded atomic.Bool
	prove := handler.ProofHandlerFunc(func(context.Context, paas.Task) error {
		if !funded.Load() {
			return paas.Permanent(errors.New("prover account out of funds"))
		}
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

	res, err := h.Execute(ctx, fibProgram{N: 10}, paas.BackendNative)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %s\n", res.State, res.Error)

	// An operator tops the account up and puts the task back to work, with a fresh budget.
	funded.Store(true)
	if err := h.Retry(ctx, res.ID); err != nil {
		log.Fatal(err)
	}
	res, err = h.Wait(ctx, res.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s after %d attempt\n", res.State, res.Attempts)

	// Only a Failed or Cancelled task can be retried.
	err = h.Retry(ctx, res.ID)
	fmt.Println("retry a completed task:", errors.Is(err, paas.ErrNotRetryable))
	// Output:
	// failed: permanent: prover account out of funds
	// completed after 1 attempt
	// retry a completed task: true
}

func ExampleProverHandle_Prune() {
	ctx := context.Background()
	fake := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg := nativeOnly()
	cfg.Clock = fake
	prove := handler.ProofHandlerFunc(func(context.Context, paas.Task) error { return nil })
	svc, err := service.New(cfg, memory.New(), map[paas.RoutingKey]handler.ProofHandler{"fib": prove})
	if err != nil {
		log.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer svc.Stop(ctx)
	h := svc.Handle()

	res, err := h.Execute(ctx, fibProgram{N: 10}, paas.BackendNative)
	if err != nil {
		log.Fatal(err)
	}
	const month = 30 * 24 * time.Hour
	fake.Advance(24 * time.Hour)
	n, err := h.Prune(ctx, month) // finished tasks older than a month
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("a day later, pruned:", n)
	fake.Advance(month)
	n, err = h.Prune(ctx, month)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("a month later, pruned:", n)
	_, err = h.Status(ctx, res.ID)
	fmt.Println("forgotten:", errors.Is(err, paas.ErrTaskNotFound))

	// A pruned task is forgotten: the same program makes a new task, proved again.
	again, err := h.Execute(ctx, fibProgram{N: 10}, paas.BackendNative)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("new task:", again.ID != res.ID, again.State)
	// Output:
	// a day later, pruned: 0
	// a month later, pruned: 1
	// forgotten: true
	// new task: true completed
}
