package gnarkhost

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/plonk"

	"github.com/zkpaas/paas/handler"
)

// ErrNoSRS is wrapped by the error of Setup for a PLONK circuit when Config has no SRS.
var ErrNoSRS = errors.New("gnarkhost: PLONK needs an SRS")

// Config says where Setup keeps the keys it makes, and what PLONK sets up from.
type Config struct {
	// CacheDir is the directory of the key cache, one subdirectory per circuit. Required.
	CacheDir string
	// SRS is the KZG structured reference string of PLONK circuits: SRSFile in production,
	// InsecureTestSRS in tests only. Required for PLONK; unused by Groth16.
	SRS SRS
}

// Setup makes a circuit ready to prove: it compiles the circuit and reads its keys from the
// cache, or, if the cache has none that match, runs gnark's setup and writes them there.
// Setup takes as long as the setup: seconds to minutes for circuits of a few hundred thousand
// constraints, and a few percent of that when the cache is used. Call it once per circuit at
// start, before the service runs tasks.
//
// Cached keys are used only if their manifest names this circuit, scheme, curve, version of
// gnark, machine architecture and SRS, if the circuit compiles to the very constraint system
// they were made for, and if every file's checksum matches. Anything else (a damaged file, a
// gnark upgrade, a changed circuit) is reported in Keys.CacheError, and the keys are made
// again and written over the old ones. Processes that set up the same circuit at once take
// turns through a lock file, so that the second reads what the first wrote.
//
// A Groth16 setup here is a single-party one: this node knows the toxic waste, so its proofs
// convince whoever trusts this node. Contracts that must not trust it need keys from an MPC
// ceremony (gnark's backend/groth16/bn254/mpcsetup), or PLONK with an SRS from one.
func Setup(cfg Config, c Circuit) (*Keys, error) {
	if cfg.CacheDir == "" {
		return nil, fmt.Errorf("%w: gnarkhost.Config has no CacheDir", handler.ErrIncomplete)
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	if c.Scheme == PLONK && cfg.SRS == nil {
		return nil, fmt.Errorf("%w: circuit %q has no Config.SRS (SRSFile, or InsecureTestSRS in tests)", ErrNoSRS, c.ID)
	}
	ccs, err := c.compile()
	if err != nil {
		return nil, err
	}
	var ccsBytes bytes.Buffer
	if _, err := ccs.WriteTo(&ccsBytes); err != nil {
		return nil, fmt.Errorf("gnarkhost: encode constraint system: %w", err)
	}
	srsID := ""
	if c.Scheme == PLONK {
		if srsID, err = cfg.SRS.ID(); err != nil {
			return nil, fmt.Errorf("gnarkhost: SRS of %q: %w", c.ID, err)
		}
	}
	if err := os.MkdirAll(cfg.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("gnarkhost: cache: %w", err)
	}
	dir := cacheDir(cfg.CacheDir, c.ID, c.Scheme)
	unlock, err := lock(dir+".lock", true)
	if err != nil {
		return nil, err
	}
	defer unlock()

	want := identity(c, srsID)
	k, err := readCache(dir, want, ccs, ccsBytes.Bytes())
	if err == nil {
		k.FromCache, k.srs = true, srsID
		return k, nil
	}
	k = &Keys{ID: c.ID, Scheme: c.Scheme, ccs: ccs, dir: dir, srs: srsID, vk: &VerifyingKey{scheme: c.Scheme}}
	if !errors.Is(err, fs.ErrNotExist) {
		k.CacheError = err
	}
	switch c.Scheme {
	case Groth16:
		k.g16, k.vk.g16, err = groth16.Setup(ccs)
	case PLONK:
		canonical, lagrange, serr := cfg.SRS.Load(ccs, cfg.CacheDir)
		if serr != nil {
			return nil, fmt.Errorf("gnarkhost: SRS of %q: %w", c.ID, serr)
		}
		k.plk, k.vk.plk, err = plonk.Setup(ccs, canonical, lagrange)
	}
	if err != nil {
		return nil, fmt.Errorf("gnarkhost: setup %q: %w", c.ID, err)
	}
	if err := writeCache(k, want); err != nil {
		return nil, fmt.Errorf("gnarkhost: write cache of %q: %w", c.ID, err)
	}
	return k, nil
}

// OpenCached reads the keys that Setup cached for a circuit, without its definition: what a
// prover process started by Subprocess does. It never sets up; a cache that is missing or not
// usable gives an error wrapping ErrCache (or fs.ErrNotExist).
func OpenCached(cacheDirectory, id string, scheme Scheme) (*Keys, error) {
	c := Circuit{ID: id, Scheme: scheme}
	if !validID.MatchString(id) || (scheme != Groth16 && scheme != PLONK) {
		return nil, fmt.Errorf("%w: id %q, scheme %q", ErrInvalidCircuit, id, scheme)
	}
	dir := cacheDir(cacheDirectory, id, scheme)
	unlock, err := lock(dir+".lock", false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	m, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	// The SRS is whatever the setting-up process was configured with.
	k, err := readCache(dir, identity(c, m.SRS), nil, nil)
	if err != nil {
		return nil, err
	}
	k.FromCache, k.srs = true, m.SRS
	return k, nil
}

// repair writes k's cache again from the keys in memory, for a prover process that found it
// damaged.
func (k *Keys) repair() error {
	unlock, err := lock(k.dir+".lock", true)
	if err != nil {
		return err
	}
	defer unlock()
	return writeCache(k, identity(Circuit{ID: k.ID, Scheme: k.Scheme}, k.srs))
}

// cacheDir is the directory of a circuit's keys under the cache directory.
func cacheDir(root, id string, scheme Scheme) string {
	return filepath.Join(root, id+"."+string(scheme))
}
