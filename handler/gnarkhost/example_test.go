package gnarkhost_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/consensys/gnark/frontend"

	"github.com/zkpaas/paas/handler/gnarkhost"
)

// cube proves knowledge of X with X³ + X + 5 = Y, gnark's own first circuit.
type cube struct {
	X frontend.Variable
	Y frontend.Variable `gnark:",public"`
}

func (c *cube) Define(api frontend.API) error {
	api.AssertIsEqual(c.Y, api.Add(api.Mul(c.X, c.X, c.X), c.X, 5))
	return nil
}

func Example() {
	dir, err := os.MkdirTemp("", "keys-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	circuit := gnarkhost.Circuit{ID: "cube", Scheme: gnarkhost.Groth16, Definition: &cube{}}

	keys, err := gnarkhost.Setup(gnarkhost.Config{CacheDir: dir}, circuit)
	if err != nil {
		log.Fatal(err)
	}
	host := &gnarkhost.Host[int]{Keys: keys, Assign: func(x int) (frontend.Circuit, error) {
		return &cube{X: x, Y: x*x*x + x + 5}, nil
	}}
	proof, err := host.Prove(context.Background(), 3)
	if err != nil {
		log.Fatal(err)
	}
	public, _ := gnarkhost.PublicWitness(proof)
	fmt.Println("verifies:", keys.Verify(proof) == nil, "public input:", public.Vector())

	// The next start reads the keys from the cache.
	again, err := gnarkhost.Setup(gnarkhost.Config{CacheDir: dir}, circuit)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("from the cache:", again.FromCache, "verifies:", again.Verify(proof) == nil)
	// Output:
	// verifies: true public input: [35]
	// from the cache: true verifies: true
}
