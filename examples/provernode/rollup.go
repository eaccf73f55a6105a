package main

import (
	"fmt"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/mimc"
	"github.com/consensys/gnark/frontend"
	mimcgadget "github.com/consensys/gnark/std/hash/mimc"
)

// The rollup of this example is a chain of states: the state after block b is MiMC, applied
// Rounds times, to the state before it plus the block's data. A StateTransition proves one
// block with the Transition circuit; a Checkpoint proves, with the Checkpoint circuit, the
// digest of an epoch's states as its transition proofs say they are.

// Transition proves that Rounds rounds of MiMC take Prev plus a private Tx to Next.
type Transition struct {
	Prev   frontend.Variable `gnark:",public"`
	Next   frontend.Variable `gnark:",public"`
	Tx     frontend.Variable // the block's data, private
	Rounds int               `gnark:"-"`
}

// Define implements frontend.Circuit.
func (c *Transition) Define(api frontend.API) error {
	h, err := mimcgadget.NewMiMC(api)
	if err != nil {
		return err
	}
	x := api.Add(c.Prev, c.Tx)
	for range c.Rounds {
		h.Reset()
		h.Write(x)
		x = h.Sum()
	}
	api.AssertIsEqual(x, c.Next)
	return nil
}

// CheckpointCircuit proves that Digest is the MiMC hash of Start and the epoch's states, the
// last of which is End.
type CheckpointCircuit struct {
	Start  frontend.Variable   `gnark:",public"`
	End    frontend.Variable   `gnark:",public"`
	Digest frontend.Variable   `gnark:",public"`
	States []frontend.Variable // after each block of the epoch, private; its length is the epoch's
}

// Define implements frontend.Circuit.
func (c *CheckpointCircuit) Define(api frontend.API) error {
	h, err := mimcgadget.NewMiMC(api)
	if err != nil {
		return err
	}
	h.Write(c.Start)
	h.Write(c.States...)
	api.AssertIsEqual(h.Sum(), c.Digest)
	api.AssertIsEqual(c.States[len(c.States)-1], c.End)
	return nil
}

// chain holds the rollup's states, computed natively; it is read-only once made, so the
// fetchers of concurrent tasks share it.
type chain struct {
	rounds int
	states []fr.Element // states[b] is the state before block b
}

// genesis is the state before block 0.
const genesis = 1

// newChain computes the states before blocks 0 to blocks.
func newChain(rounds int, blocks uint64) *chain {
	c := &chain{rounds: rounds, states: make([]fr.Element, blocks+1)}
	c.states[0].SetUint64(genesis)
	for b := range blocks {
		c.states[b+1] = step(c.states[b], b, rounds)
	}
	return c
}

// step runs block b on state x.
func step(x fr.Element, b uint64, rounds int) fr.Element {
	t := tx(b)
	x.Add(&x, &t)
	for range rounds {
		x = hash(x)
	}
	return x
}

// tx is the data of block b.
func tx(b uint64) fr.Element {
	var e fr.Element
	e.SetUint64(b*7919 + 17)
	return e
}

// state returns the state before block b.
func (c *chain) state(b uint64) (fr.Element, error) {
	if b >= uint64(len(c.states)) {
		return fr.Element{}, fmt.Errorf("block %d is past the chain's %d", b, len(c.states)-1)
	}
	return c.states[b], nil
}

// hash is MiMC of elements, as the circuits' MiMC computes it.
func hash(xs ...fr.Element) fr.Element {
	h := mimc.NewMiMC()
	for _, x := range xs {
		b := x.Bytes()
		h.Write(b[:])
	}
	var out fr.Element
	out.SetBytes(h.Sum(nil))
	return out
}

// transitionInput is what a Transition proof is made of.
type transitionInput struct {
	Block      uint64
	Prev, Next fr.Element
}

// assignTransition is the Assign of the transitions' host.
func assignTransition(rounds int) func(transitionInput) (frontend.Circuit, error) {
	return func(in transitionInput) (frontend.Circuit, error) {
		t := tx(in.Block)
		return &Transition{Prev: in.Prev, Next: in.Next, Tx: t, Rounds: rounds}, nil
	}
}

// checkpointInput is what a Checkpoint proof is made of: states read from the epoch's
// transition proofs.
type checkpointInput struct {
	Start  fr.Element
	States []fr.Element
}

// digest is the checkpoint's digest of its states.
func (in checkpointInput) digest() fr.Element {
	return hash(append([]fr.Element{in.Start}, in.States...)...)
}

func assignCheckpoint(in checkpointInput) (frontend.Circuit, error) {
	if len(in.States) == 0 {
		return nil, fmt.Errorf("a checkpoint of no states")
	}
	states := make([]frontend.Variable, len(in.States))
	for i := range in.States {
		states[i] = in.States[i]
	}
	return &CheckpointCircuit{
		Start: in.Start, End: in.States[len(in.States)-1], Digest: in.digest(), States: states,
	}, nil
}

// decimal prints a field element in decimal.
func decimal(e fr.Element) string { return e.BigInt(new(big.Int)).String() }
