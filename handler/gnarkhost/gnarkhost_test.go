package gnarkhost_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	mimcnative "github.com/consensys/gnark-crypto/ecc/bn254/fr/mimc"
	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/hash/mimc"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler/gnarkhost"
)

// The test binary is also the prover program of the Subprocess tests: childEnv selects what it
// does when Subprocess runs it with gnarkhost.ProverCommand.
const (
	childEnv = "GNARKHOST_TEST_CHILD"
	fifoEnv  = "GNARKHOST_TEST_FIFO"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode))
	}
	goleak.VerifyTestMain(m)
}

// child runs the test binary as a prover process in one of these modes:
//   - prove: gnarkhost.ProverMain, as a real prover program does;
//   - busy: says its pid on the FIFO named by fifoEnv, then proves the same witness again and
//     again, as a long proof keeps a prover busy, until it is killed;
//   - panic: panics, as a prover with a bug does.
func child(mode string) int {
	if len(os.Args) < 2 || os.Args[1] != gnarkhost.ProverCommand {
		fmt.Fprintln(os.Stderr, "child: not run as", gnarkhost.ProverCommand)
		return 2
	}
	args := os.Args[2:]
	switch mode {
	case "prove":
		return gnarkhost.ProverMain(args, os.Stdin, os.Stdout, os.Stderr)
	case "busy":
		in, err := io.ReadAll(os.Stdin)
		if err != nil {
			return 1
		}
		fifo, err := os.OpenFile(os.Getenv(fifoEnv), os.O_WRONLY, 0)
		if err != nil {
			return 1
		}
		fmt.Fprintf(fifo, "%d\n", os.Getpid())
		fifo.Close()
		for {
			if code := gnarkhost.ProverMain(args, bytes.NewReader(in), io.Discard, os.Stderr); code != 0 {
				return code
			}
		}
	case "panic":
		panic("a prover with a bug")
	}
	return 2
}

// chain proves knowledge of X such that N rounds of MiMC from X give Out: the circuit of the
// example's state transitions, small.
type chain struct {
	X   frontend.Variable
	Out frontend.Variable `gnark:",public"`
	N   int               `gnark:"-"`
}

func (c *chain) Define(api frontend.API) error {
	h, err := mimc.NewMiMC(api)
	if err != nil {
		return err
	}
	x := c.X
	for range c.N {
		h.Reset()
		h.Write(x)
		x = h.Sum()
	}
	api.AssertIsEqual(x, c.Out)
	return nil
}

// chainOut computes the chain out of circuit.
func chainOut(x uint64, n int) *big.Int {
	var e fr.Element
	e.SetUint64(x)
	for range n {
		h := mimcnative.NewMiMC()
		b := e.Bytes()
		h.Write(b[:])
		e.SetBytes(h.Sum(nil))
	}
	return e.BigInt(new(big.Int))
}

const rounds = 2

func chainCircuit(id string, scheme gnarkhost.Scheme) gnarkhost.Circuit {
	return gnarkhost.Circuit{ID: id, Scheme: scheme, Definition: &chain{N: rounds}}
}

// assignChain is the Assign of a host of chainCircuit: the input is X.
func assignChain(x uint64) (frontend.Circuit, error) {
	return &chain{X: x, Out: chainOut(x, rounds), N: rounds}, nil
}

// setup sets up a circuit in dir with a test SRS, and fails the test on error.
func setup(t testing.TB, dir string, c gnarkhost.Circuit) *gnarkhost.Keys {
	t.Helper()
	k, err := gnarkhost.Setup(gnarkhost.Config{CacheDir: dir, SRS: gnarkhost.InsecureTestSRS{}}, c)
	require.NoError(t, err)
	return k
}

var schemes = []gnarkhost.Scheme{gnarkhost.Groth16, gnarkhost.PLONK}

func isPermanent(err error) bool {
	_, ok := errors.AsType[*paas.PermanentError](err)
	return ok
}

// publicValue is the only public input of a chain's witness, in decimal.
func publicValue(t testing.TB, public witness.Witness) string {
	t.Helper()
	v, ok := public.Vector().(fr.Vector)
	require.True(t, ok, "vector of %T", public.Vector())
	require.Len(t, v, 1)
	return v[0].String()
}
