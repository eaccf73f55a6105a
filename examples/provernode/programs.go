package main

import (
	"context"
	"fmt"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/handler/gnarkhost"
)

// The programs of the node, and the backends that prove them.
const (
	backendGroth16 paas.Backend = "gnark-groth16" // transitions
	backendPLONK   paas.Backend = "gnark-plonk"   // checkpoints
	// paas.BackendNative runs Executions; paas.BackendRisc0 is Bonsai, when configured.
)

// StateTransition proves the block From, which takes the state before From to the state
// before To = From+1.
type StateTransition struct{ From, To uint64 }

// RoutingKey implements paas.ProgramType.
func (StateTransition) RoutingKey() paas.RoutingKey { return "transition" }

// Checkpoint proves the digest of the states of blocks From to To (excluded), the epoch, from
// the proofs of its transitions, which it depends on.
type Checkpoint struct{ Epoch, From, To uint64 }

// RoutingKey implements paas.ProgramType.
func (Checkpoint) RoutingKey() paas.RoutingKey { return "checkpoint" }

// Execution runs the blocks From to To natively and gives the state after them: what the
// checkpoint of the epoch must end on. It costs nothing, and proves nothing.
type Execution struct{ From, To uint64 }

// RoutingKey implements paas.ProgramType.
func (Execution) RoutingKey() paas.RoutingKey { return "execution" }

// transitionFetcher reads a transition's states from the chain.
func transitionFetcher(c *chain) handler.InputFetcher[StateTransition, transitionInput] {
	return handler.InputFetcherFunc[StateTransition, transitionInput](func(_ context.Context, p StateTransition) (transitionInput, error) {
		if p.To != p.From+1 {
			return transitionInput{}, paas.Permanent(fmt.Errorf("a transition covers one block, not %d to %d", p.From, p.To))
		}
		prev, err := c.state(p.From)
		if err != nil {
			return transitionInput{}, paas.Permanent(err)
		}
		next, err := c.state(p.To)
		if err != nil {
			return transitionInput{}, paas.Permanent(err)
		}
		return transitionInput{Block: p.From, Prev: prev, Next: next}, nil
	})
}

// checkpointFetcher reads a checkpoint's states from the proofs of its transitions: each is
// verified, and each must start where the one before ended.
func checkpointFetcher(proofs paas.ProofReader, transitions *gnarkhost.Keys) handler.InputFetcher[Checkpoint, checkpointInput] {
	return handler.InputFetcherFunc[Checkpoint, checkpointInput](func(ctx context.Context, p Checkpoint) (checkpointInput, error) {
		deps, err := handler.DependencyProofs(ctx, proofs)
		if err != nil {
			return checkpointInput{}, err
		}
		if uint64(len(deps)) != p.To-p.From {
			return checkpointInput{}, paas.Permanent(fmt.Errorf("epoch %d has %d transition proofs, want %d", p.Epoch, len(deps), p.To-p.From))
		}
		var in checkpointInput
		for i, proof := range deps {
			if err := transitions.Verify(proof); err != nil {
				return checkpointInput{}, paas.Permanent(fmt.Errorf("transition %d of epoch %d: %w", i, p.Epoch, err))
			}
			prev, next, err := transitionStates(proof)
			if err != nil {
				return checkpointInput{}, paas.Permanent(err)
			}
			if i == 0 {
				in.Start = prev
			} else if !prev.Equal(&in.States[i-1]) {
				return checkpointInput{}, paas.Permanent(fmt.Errorf("transition %d of epoch %d does not start where %d ended", i, p.Epoch, i-1))
			}
			in.States = append(in.States, next)
		}
		return in, nil
	})
}

// transitionStates reads the public inputs of a transition proof: the states before and after.
func transitionStates(p paas.Proof) (prev, next fr.Element, err error) {
	public, err := gnarkhost.PublicWitness(p)
	if err != nil {
		return prev, next, err
	}
	v, ok := public.Vector().(fr.Vector)
	if !ok || len(v) != 2 {
		return prev, next, fmt.Errorf("a transition proof with %d public inputs, want 2", len(v))
	}
	return v[0], v[1], nil
}

// checkpointStates reads the public inputs of a checkpoint proof.
func checkpointStates(p paas.Proof) (start, end, digest fr.Element, err error) {
	public, err := gnarkhost.PublicWitness(p)
	if err != nil {
		return start, end, digest, err
	}
	v, ok := public.Vector().(fr.Vector)
	if !ok || len(v) != 3 {
		return start, end, digest, fmt.Errorf("a checkpoint proof with %d public inputs, want 3", len(v))
	}
	return v[0], v[1], v[2], nil
}

// executionFetcher and runExecution run an epoch natively.
func executionFetcher() handler.InputFetcher[Execution, Execution] {
	return handler.InputFetcherFunc[Execution, Execution](func(_ context.Context, p Execution) (Execution, error) {
		return p, nil
	})
}

func runExecution(c *chain) func(context.Context, Execution) ([]byte, error) {
	return func(_ context.Context, p Execution) ([]byte, error) {
		x, err := c.state(p.From)
		if err != nil {
			return nil, paas.Permanent(err)
		}
		for b := p.From; b < p.To; b++ {
			x = step(x, b, c.rounds)
		}
		out := x.Bytes()
		return out[:], nil
	}
}
