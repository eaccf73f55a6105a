package gnarkhost

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/frontend/cs/scs"
)

// Scheme is the proof system a circuit is proven with.
type Scheme string

// The schemes of this package, both on BN254, the curve that Ethereum verifies cheaply.
const (
	// Groth16: the smallest proofs and the cheapest verification, with a setup per circuit.
	Groth16 Scheme = "groth16"
	// PLONK: a universal setup (a KZG SRS shared by every circuit up to its size), larger
	// proofs.
	PLONK Scheme = "plonk"
)

// curve is the only curve of this package: BN254, which Ethereum's precompiles verify.
const curve = ecc.BN254

// Circuit registers a gnark circuit under an id. Setup compiles it, and the id names its
// keys in the cache.
type Circuit struct {
	// ID names the circuit: letters, digits, '.', '_' and '-', at most 100, not starting with
	// '.'. Change it when Define changes in a way that should not be mistaken for the old
	// circuit; Setup also notices a changed constraint system and sets up again.
	ID string
	// Scheme is Groth16 or PLONK.
	Scheme Scheme
	// Definition is a value of the circuit's type whose Define describes the constraints, with
	// every compile-time size (a field tagged `gnark:"-"`) set; its wires may be left zero.
	Definition frontend.Circuit
}

// ErrInvalidCircuit is wrapped by the errors of Setup for a Circuit it cannot take: a bad id,
// an unknown scheme, no definition, or a definition that does not compile.
var ErrInvalidCircuit = errors.New("gnarkhost: invalid circuit")

var validID = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$`)

// check reports whether c can be set up, before anything is compiled.
func (c Circuit) check() error {
	switch {
	case !validID.MatchString(c.ID):
		return fmt.Errorf("%w: id %q: want 1 to 100 letters, digits, '.', '_' or '-', not starting with '.'", ErrInvalidCircuit, c.ID)
	case c.Scheme != Groth16 && c.Scheme != PLONK:
		return fmt.Errorf("%w %q: unknown scheme %q", ErrInvalidCircuit, c.ID, c.Scheme)
	case c.Definition == nil:
		return fmt.Errorf("%w %q: no Definition", ErrInvalidCircuit, c.ID)
	}
	return nil
}

// compile builds c's constraint system: R1CS for Groth16, SparseR1CS for PLONK.
func (c Circuit) compile() (ccs constraint.ConstraintSystem, err error) {
	var builder frontend.NewBuilder = r1cs.NewBuilder
	if c.Scheme == PLONK {
		builder = scs.NewBuilder
	}
	// A Define that indexes out of range, say, panics inside Compile; that is a bad circuit,
	// not a reason to take the node down.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w %q: compile panicked: %v", ErrInvalidCircuit, c.ID, r)
		}
	}()
	ccs, err = frontend.Compile(curve.ScalarField(), builder, c.Definition)
	if err != nil {
		return nil, fmt.Errorf("%w %q: compile: %w", ErrInvalidCircuit, c.ID, err)
	}
	return ccs, nil
}
