package gnarkhost

import (
	"context"
	"fmt"
	"sync"

	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/frontend"
	"golang.org/x/sync/semaphore"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
)

// Host proves a circuit in this process: a handler.Host for a backend whose tasks are proofs
// of one circuit. It is the fastest way to prove (no process to start, keys read once), and
// the least contained: gnark's provers take no context, so a cancelled task or an attempt
// past its timeout is noticed when the current proof ends, not before, and a proof that runs
// out of memory takes the node with it. Use Subprocess where that matters.
//
// gnark's provers use every core, so a Host runs one proof at a time unless Parallel says
// otherwise, and the backend needs no more than one worker per Host.
type Host[I any] struct {
	// Keys are the circuit's, from Setup. Required.
	Keys *Keys
	// Assign turns an input into the circuit's full assignment, every wire set. Required.
	// Its errors fail the task permanently: the same input would fail the same way.
	Assign func(input I) (frontend.Circuit, error)
	// Parallel is how many proofs run at once; zero means 1.
	Parallel int

	once  sync.Once
	slots *semaphore.Weighted
}

var _ handler.Host[struct{}] = (*Host[struct{}])(nil)

// Prove proves input and returns the proof, verified (see Keys.Prove). A ctx that ends while
// the proof waits for its turn ends the wait; one that ends while it runs does not.
func (h *Host[I]) Prove(ctx context.Context, input I) (paas.Proof, error) {
	if h.Keys == nil || h.Assign == nil {
		return paas.Proof{}, paas.Permanent(fmt.Errorf("%w: gnarkhost.Host needs Keys and Assign", handler.ErrIncomplete))
	}
	full, err := assign(h.Keys, h.Assign, input)
	if err != nil {
		return paas.Proof{}, err
	}
	h.once.Do(func() { h.slots = semaphore.NewWeighted(int64(max(h.Parallel, 1))) })
	if err := h.slots.Acquire(ctx, 1); err != nil {
		return paas.Proof{}, err
	}
	defer h.slots.Release(1)
	return h.Keys.proveWitness(full)
}

// assign builds the full witness of input.
func assign[I any](k *Keys, f func(I) (frontend.Circuit, error), input I) (witness.Witness, error) {
	assignment, err := f(input)
	if err != nil {
		return nil, paas.Permanent(fmt.Errorf("gnarkhost: assign %q: %w", k.ID, err))
	}
	return k.witness(assignment)
}
