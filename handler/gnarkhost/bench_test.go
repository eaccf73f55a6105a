package gnarkhost_test

import (
	"fmt"
	"testing"

	"github.com/zkpaas/paas/handler/gnarkhost"
)

// benchRounds sizes the benchmarks' circuit: 64 rounds of MiMC, 21,121 Groth16 constraints.
const benchRounds = 64

func benchCircuit(scheme gnarkhost.Scheme) gnarkhost.Circuit {
	return gnarkhost.Circuit{ID: fmt.Sprintf("bench-%d", benchRounds), Scheme: scheme, Definition: &chain{N: benchRounds}}
}

// BenchmarkSetup is a first start: compile, set up, write the cache.
func BenchmarkSetup(b *testing.B) {
	for _, scheme := range schemes {
		b.Run(string(scheme), func(b *testing.B) {
			for b.Loop() {
				setup(b, b.TempDir(), benchCircuit(scheme))
			}
		})
	}
}

// BenchmarkSetupFromCache is every later start: compile, check the cache, read the keys.
func BenchmarkSetupFromCache(b *testing.B) {
	for _, scheme := range schemes {
		b.Run(string(scheme), func(b *testing.B) {
			dir := b.TempDir()
			setup(b, dir, benchCircuit(scheme))
			for b.Loop() {
				if k := setup(b, dir, benchCircuit(scheme)); !k.FromCache {
					b.Fatal("setup ran again")
				}
			}
		})
	}
}

// BenchmarkProve is one proof, verified, in process.
func BenchmarkProve(b *testing.B) {
	for _, scheme := range schemes {
		b.Run(string(scheme), func(b *testing.B) {
			k := setup(b, b.TempDir(), benchCircuit(scheme))
			for b.Loop() {
				if _, err := k.Prove(&chain{X: 3, Out: chainOut(3, benchRounds), N: benchRounds}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
