package gnarkhost

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	kzgbn254 "github.com/consensys/gnark-crypto/ecc/bn254/kzg"
	"github.com/consensys/gnark-crypto/kzg"
	"github.com/consensys/gnark/backend/plonk"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/test/unsafekzg"
)

// SRS is the KZG structured reference string that PLONK keys are set up from. It matters
// only at setup: once a circuit's keys are cached, proving needs no SRS.
type SRS interface {
	// ID names the SRS, and is written in the cache's manifest: keys set up with one SRS
	// are never taken from the cache for another.
	ID() (string, error)
	// Load returns the SRS in canonical and Lagrange form, sized for ccs (plonk.SRSSize).
	// cacheDir is Config.CacheDir, where an SRS may keep what it derives.
	Load(ccs constraint.ConstraintSystem, cacheDir string) (canonical, lagrange kzg.SRS, err error)
}

// SRSFile is the SRS of production: a canonical BN254 KZG SRS from a multi-party ceremony,
// such as Aztec's Ignition, read from a file in gnark-crypto's encoding (kzg.SRS.WriteTo), as
// converted by Consensys/gnark-ignition-verifier. The file is decoded with every check, as it
// comes from outside. The Lagrange form a circuit's size needs is derived once and cached
// under Config.CacheDir with a checksum, then read back without the checks.
type SRSFile struct {
	// Path is the SRS file. It must have at least as many points as the largest circuit needs.
	Path string
}

// ID is "sha256:" and the file's SHA-256, read through once.
func (s SRSFile) ID() (string, error) {
	f, err := os.Open(s.Path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// Load implements SRS.
func (s SRSFile) Load(ccs constraint.ConstraintSystem, cacheDir string) (kzg.SRS, kzg.SRS, error) {
	id, err := s.ID()
	if err != nil {
		return nil, nil, err
	}
	f, err := os.Open(s.Path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var full kzgbn254.SRS
	if _, err := full.ReadFrom(bufio.NewReaderSize(f, 1<<20)); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", s.Path, err)
	}
	sizeCanonical, sizeLagrange := plonk.SRSSize(ccs)
	if len(full.Pk.G1) < sizeCanonical {
		return nil, nil, fmt.Errorf("%s has %d points, the circuit needs %d", s.Path, len(full.Pk.G1), sizeCanonical)
	}
	canonical := &kzgbn254.SRS{Vk: full.Vk}
	canonical.Pk.G1 = full.Pk.G1[:sizeCanonical]

	path := filepath.Join(cacheDir, fmt.Sprintf("lagrange-%d-%s.bin", sizeLagrange, id[len("sha256:"):][:16]))
	lagrange, err := readLagrange(path)
	if err == nil {
		return canonical, lagrange, nil
	}
	if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, ErrCache) {
		return nil, nil, err
	}
	lagrange = &kzgbn254.SRS{Vk: full.Vk}
	if lagrange.Pk.G1, err = kzgbn254.ToLagrangeG1(full.Pk.G1[:sizeLagrange]); err != nil {
		return nil, nil, fmt.Errorf("derive the Lagrange form: %w", err)
	}
	if err := writeLagrange(path, lagrange); err != nil {
		return nil, nil, err
	}
	return canonical, lagrange, nil
}

// readLagrange reads a Lagrange SRS cached by writeLagrange, after checking its checksum.
func readLagrange(path string) (*kzgbn254.SRS, error) {
	want, err := os.ReadFile(path + ".sha256")
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if sum(b) != string(want) {
		return nil, fmt.Errorf("%w: %s: checksum mismatch", ErrCache, path)
	}
	var srs kzgbn254.SRS
	if _, err := srs.UnsafeReadFrom(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCache, path, err)
	}
	return &srs, nil
}

// writeLagrange caches a Lagrange SRS, its checksum written last.
func writeLagrange(path string, srs *kzgbn254.SRS) error {
	var buf bytes.Buffer
	if _, err := srs.WriteRawTo(&buf); err != nil {
		return err
	}
	os.Remove(path + ".sha256")
	if err := writeFile(path, buf.Bytes()); err != nil {
		return err
	}
	return writeFile(path+".sha256", []byte(sum(buf.Bytes())))
}

// InsecureTestSRS is an SRS for tests only, made by gnark's test/unsafekzg from a secret that
// this process knows: anyone who knows it can forge proofs for every circuit set up with it.
// Never use it for proofs that anyone relies on. It is used only where a Config names it.
type InsecureTestSRS struct {
	// CacheDir, if set, is where unsafekzg keeps the SRSs it makes, to make them once.
	CacheDir string
}

// ID implements SRS. Every insecure SRS has the same id: keys made with one are as
// worthless as keys made with another, and never mistaken for keys made with an SRSFile.
func (InsecureTestSRS) ID() (string, error) { return "insecure-test-srs", nil }

// Load implements SRS.
func (s InsecureTestSRS) Load(ccs constraint.ConstraintSystem, _ string) (kzg.SRS, kzg.SRS, error) {
	var opts []unsafekzg.Option
	if s.CacheDir != "" {
		opts = append(opts, unsafekzg.WithCacheDir(s.CacheDir))
	}
	return unsafekzg.NewSRS(ccs, opts...)
}
