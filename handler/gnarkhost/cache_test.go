package gnarkhost_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/plonk"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/scs"
	"github.com/consensys/gnark/test/unsafekzg"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/handler/gnarkhost"
)

func TestASecondStartReadsTheCachedKeysAndRunsNoSetup(t *testing.T) {
	dir := t.TempDir()
	for _, scheme := range schemes {
		t.Run(string(scheme), func(t *testing.T) {
			c := chainCircuit("chain", scheme)
			first := setup(t, dir, c)
			assert.False(t, first.FromCache)
			assert.NoError(t, first.CacheError)
			p, err := first.Prove(&chain{X: 5, Out: chainOut(5, rounds), N: rounds})
			require.NoError(t, err)

			second := setup(t, dir, c)
			assert.True(t, second.FromCache, "setup ran again")
			assert.NoError(t, second.CacheError)
			// Keys from a new setup would not verify the first keys' proofs.
			require.NoError(t, second.Verify(p))
			p2, err := second.Prove(&chain{X: 6, Out: chainOut(6, rounds), N: rounds})
			require.NoError(t, err)
			require.NoError(t, first.Verify(p2))
		})
	}
}

func TestADamagedCacheIsDetectedAndRebuilt(t *testing.T) {
	damages := map[string]func(t *testing.T, dir string){
		"proving key byte flipped":   func(t *testing.T, dir string) { flip(t, filepath.Join(dir, "pk.bin"), 1000) },
		"verifying key byte flipped": func(t *testing.T, dir string) { flip(t, filepath.Join(dir, "vk.bin"), 10) },
		"constraint system truncated": func(t *testing.T, dir string) {
			require.NoError(t, os.Truncate(filepath.Join(dir, "ccs.bin"), 100))
		},
		"manifest edited": func(t *testing.T, dir string) {
			b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
			require.NoError(t, err)
			edited := []byte(string(b[:len(b)-3]) + " }")
			require.NoError(t, os.WriteFile(filepath.Join(dir, "manifest.json"), edited, 0o644))
		},
		"manifest gone": func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, "manifest.json")))
		},
		"proving key gone": func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, "pk.bin")))
		},
	}
	for _, scheme := range schemes {
		for name, damage := range damages {
			t.Run(string(scheme)+"/"+name, func(t *testing.T) {
				root := t.TempDir()
				c := chainCircuit("chain", scheme)
				setup(t, root, c)
				damage(t, filepath.Join(root, "chain."+string(scheme)))

				rebuilt := setup(t, root, c)
				assert.False(t, rebuilt.FromCache, "a damaged cache was trusted")
				if name != "manifest gone" {
					assert.ErrorIs(t, rebuilt.CacheError, gnarkhost.ErrCache)
				}
				p, err := rebuilt.Prove(&chain{X: 9, Out: chainOut(9, rounds), N: rounds})
				require.NoError(t, err)

				again := setup(t, root, c)
				assert.True(t, again.FromCache, "the rebuilt cache was not written")
				require.NoError(t, again.Verify(p))
			})
		}
	}
}

func TestAChangedCircuitUnderTheSameIDIsSetUpAgain(t *testing.T) {
	root := t.TempDir()
	setup(t, root, chainCircuit("chain", gnarkhost.Groth16))
	longer := gnarkhost.Circuit{ID: "chain", Scheme: gnarkhost.Groth16, Definition: &chain{N: rounds + 1}}
	k := setup(t, root, longer)
	assert.False(t, k.FromCache)
	assert.ErrorContains(t, k.CacheError, "another constraint system")
	_, err := k.Prove(&chain{X: 1, Out: chainOut(1, rounds+1), N: rounds + 1})
	require.NoError(t, err)
}

func TestPLONKNeedsAnSRSNamedInTheConfig(t *testing.T) {
	_, err := gnarkhost.Setup(gnarkhost.Config{CacheDir: t.TempDir()}, chainCircuit("chain", gnarkhost.PLONK))
	assert.ErrorIs(t, err, gnarkhost.ErrNoSRS)
}

func TestKeysFromTheTestSRSAreNotTakenForKeysOfAFileSRS(t *testing.T) {
	root := t.TempDir()
	c := chainCircuit("chain", gnarkhost.PLONK)
	setup(t, root, c)
	srs := gnarkhost.SRSFile{Path: writeCanonicalSRS(t, c)}
	k, err := gnarkhost.Setup(gnarkhost.Config{CacheDir: root, SRS: srs}, c)
	require.NoError(t, err)
	assert.False(t, k.FromCache)
	assert.ErrorContains(t, k.CacheError, "insecure-test-srs")
}

func TestPLONKSetsUpFromAnSRSFileAndCachesItsLagrangeForm(t *testing.T) {
	root := t.TempDir()
	c := chainCircuit("chain", gnarkhost.PLONK)
	cfg := gnarkhost.Config{CacheDir: root, SRS: gnarkhost.SRSFile{Path: writeCanonicalSRS(t, c)}}
	k, err := gnarkhost.Setup(cfg, c)
	require.NoError(t, err)
	p, err := k.Prove(&chain{X: 2, Out: chainOut(2, rounds), N: rounds})
	require.NoError(t, err)
	lagrange, err := filepath.Glob(filepath.Join(root, "lagrange-*.bin"))
	require.NoError(t, err)
	assert.Len(t, lagrange, 1, "the Lagrange form is cached")

	// Another circuit of the same size uses the cached Lagrange form.
	other := gnarkhost.Circuit{ID: "chain-again", Scheme: gnarkhost.PLONK, Definition: &chain{N: rounds}}
	k2, err := gnarkhost.Setup(cfg, other)
	require.NoError(t, err)
	_, err = k2.Prove(&chain{X: 2, Out: chainOut(2, rounds), N: rounds})
	require.NoError(t, err)

	again, err := gnarkhost.Setup(cfg, c)
	require.NoError(t, err)
	assert.True(t, again.FromCache)
	require.NoError(t, again.Verify(p))
}

func TestSetupRefusesWhatItCannotTake(t *testing.T) {
	cfg := gnarkhost.Config{CacheDir: t.TempDir()}
	_, err := gnarkhost.Setup(gnarkhost.Config{}, chainCircuit("chain", gnarkhost.Groth16))
	assert.ErrorIs(t, err, handler.ErrIncomplete)
	for _, c := range []gnarkhost.Circuit{
		{ID: "", Scheme: gnarkhost.Groth16, Definition: &chain{N: 1}},
		{ID: "../up", Scheme: gnarkhost.Groth16, Definition: &chain{N: 1}},
		{ID: ".hidden", Scheme: gnarkhost.Groth16, Definition: &chain{N: 1}},
		{ID: "ok", Scheme: "stark", Definition: &chain{N: 1}},
		{ID: "ok", Scheme: gnarkhost.Groth16},
		{ID: "ok", Scheme: gnarkhost.Groth16, Definition: &broken{}},
	} {
		_, err := gnarkhost.Setup(cfg, c)
		assert.ErrorIs(t, err, gnarkhost.ErrInvalidCircuit, "%+v", c)
	}
}

// broken is a circuit whose Define fails.
type broken struct{ X frontend.Variable }

func (b *broken) Define(api frontend.API) error {
	var none []frontend.Variable
	api.AssertIsEqual(b.X, none[1]) // panics: out of range
	return nil
}

// flip flips one bit of a file at offset.
func flip(t *testing.T, path string, offset int) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[offset%len(b)] ^= 0x10
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

// writeCanonicalSRS writes a canonical SRS big enough for c to a file, as a ceremony's
// would be; it is made by unsafekzg, the only SRS a test can make.
func writeCanonicalSRS(t *testing.T, c gnarkhost.Circuit) string {
	t.Helper()
	ccs, err := frontend.Compile(ecc.BN254.ScalarField(), scs.NewBuilder, c.Definition)
	require.NoError(t, err)
	canonical, _, err := unsafekzg.NewSRS(ccs)
	require.NoError(t, err)
	sizeCanonical, _ := plonk.SRSSize(ccs)
	require.GreaterOrEqual(t, sizeCanonical, 1)
	path := filepath.Join(t.TempDir(), "srs.bin")
	f, err := os.Create(path)
	require.NoError(t, err)
	_, err = canonical.WriteTo(f)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return path
}
