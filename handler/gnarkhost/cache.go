package gnarkhost

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/plonk"
	"github.com/consensys/gnark/constraint"
)

// ErrCache is wrapped by Keys.CacheError, and by the errors of OpenCached: the keys in the
// cache could not be used. Setup then sets the circuit up again and writes the cache anew.
var ErrCache = errors.New("gnarkhost: cache not usable")

// The cache of a circuit is a directory, named after its id and scheme, holding one file per
// part and a manifest written last. The manifest names what the parts were made for (circuit,
// scheme, curve, gnark's version, the machine's architecture, the SRS) and the SHA-256 of each
// part, and carries a checksum of its own. A part is decoded only after its checksum matches,
// which is what makes gnark's fast, unchecked decoders safe here: a raw proving key reads in
// a fiftieth of the time of a checked one, and a hundredth of the time of a new setup.
const (
	manifestFile  = "manifest.json"
	ccsFile       = "ccs.bin"
	pkFile        = "pk.bin"
	vkFile        = "vk.bin"
	cacheFormat   = 1
	gnarkPath     = "github.com/consensys/gnark"
	gnarkCrypto   = "github.com/consensys/gnark-crypto"
	unknownModule = "unknown"
)

// manifest describes a circuit's cache directory.
type manifest struct {
	Format      int                 `json:"format"`
	Circuit     string              `json:"circuit"`
	Scheme      Scheme              `json:"scheme"`
	Curve       string              `json:"curve"`
	Gnark       string              `json:"gnark"`
	GnarkCrypto string              `json:"gnark_crypto"`
	Arch        string              `json:"arch"` // pk dumps are in the machine's byte order
	SRS         string              `json:"srs,omitempty"`
	Files       map[string]fileInfo `json:"files"`
	Sum         string              `json:"sum"` // SHA-256 of the manifest with Sum empty
}

// fileInfo is one part of a cache: its file's size and SHA-256.
type fileInfo struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// identity is the manifest the cache of c must have to be used, without its files.
func identity(c Circuit, srs string) manifest {
	return manifest{
		Format:      cacheFormat,
		Circuit:     c.ID,
		Scheme:      c.Scheme,
		Curve:       curve.String(),
		Gnark:       moduleVersion(gnarkPath),
		GnarkCrypto: moduleVersion(gnarkCrypto),
		Arch:        runtime.GOARCH,
		SRS:         srs,
	}
}

// differs says what differs between the identity parts of two manifests, or returns "".
func (m manifest) differs(want manifest) string {
	switch {
	case m.Format != want.Format:
		return fmt.Sprintf("format %d, want %d", m.Format, want.Format)
	case m.Circuit != want.Circuit || m.Scheme != want.Scheme || m.Curve != want.Curve:
		return fmt.Sprintf("made for %s %s on %s", m.Circuit, m.Scheme, m.Curve)
	case m.Gnark != want.Gnark || m.GnarkCrypto != want.GnarkCrypto:
		return fmt.Sprintf("made by gnark %s (gnark-crypto %s), this is %s (%s)", m.Gnark, m.GnarkCrypto, want.Gnark, want.GnarkCrypto)
	case m.Arch != want.Arch:
		return fmt.Sprintf("made on %s, this is %s", m.Arch, want.Arch)
	case m.SRS != want.SRS:
		return fmt.Sprintf("set up with SRS %q, configured %q", m.SRS, want.SRS)
	}
	return ""
}

// moduleVersion is the version of a module linked into this binary, as the build recorded it.
func moduleVersion(path string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return unknownModule
	}
	for _, d := range info.Deps {
		if d.Path == path {
			if d.Replace != nil {
				return d.Replace.Path + "@" + d.Replace.Version
			}
			return d.Version
		}
	}
	return unknownModule
}

// seal sets m.Sum to the checksum of m.
func (m *manifest) seal() ([]byte, error) {
	m.Sum = ""
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	m.Sum = sum(b)
	return json.MarshalIndent(m, "", "  ")
}

// readManifest reads dir's manifest and checks its own checksum.
func readManifest(dir string) (manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if err != nil {
		return manifest{}, err
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return manifest{}, fmt.Errorf("%w: %s: %w", ErrCache, manifestFile, err)
	}
	got := m.Sum
	if _, err := m.seal(); err != nil {
		return manifest{}, err
	}
	if got != m.Sum {
		return manifest{}, fmt.Errorf("%w: %s: checksum mismatch", ErrCache, manifestFile)
	}
	return m, nil
}

// readPart reads a part of dir and checks it against the manifest, before anything decodes it.
func readPart(dir string, m manifest, name string) ([]byte, error) {
	info, ok := m.Files[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s is not in the manifest", ErrCache, name)
	}
	path := filepath.Join(dir, name)
	// %v, not %w: a missing part is a damaged cache, not a missing one.
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCache, err)
	}
	if st.Size() != info.Size {
		return nil, fmt.Errorf("%w: %s has %d bytes, the manifest says %d", ErrCache, name, st.Size(), info.Size)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCache, err)
	}
	if sum(b) != info.SHA256 {
		return nil, fmt.Errorf("%w: %s: checksum mismatch", ErrCache, name)
	}
	return b, nil
}

// readCache reads the keys cached in dir, if its manifest has want's identity. A non-nil ccs
// is the circuit as compiled now: the cached one must be the same, byte for byte, and ccs is
// used instead of decoding it again. A missing cache gives an error wrapping fs.ErrNotExist.
func readCache(dir string, want manifest, ccs constraint.ConstraintSystem, ccsBytes []byte) (*Keys, error) {
	m, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	if why := m.differs(want); why != "" {
		return nil, fmt.Errorf("%w: %s", ErrCache, why)
	}
	k := &Keys{ID: m.Circuit, Scheme: m.Scheme, dir: dir}
	if ccs != nil {
		// Read it anyway: a prover process that has no circuit definitions decodes it.
		if _, err := readPart(dir, m, ccsFile); err != nil {
			return nil, err
		}
		if m.Files[ccsFile].SHA256 != sum(ccsBytes) {
			return nil, fmt.Errorf("%w: made for another constraint system than the circuit compiles to now", ErrCache)
		}
		k.ccs = ccs
	} else {
		b, err := readPart(dir, m, ccsFile)
		if err != nil {
			return nil, err
		}
		if k.ccs, err = decodeCS(m.Scheme, b); err != nil {
			return nil, err
		}
	}
	pk, err := readPart(dir, m, pkFile)
	if err != nil {
		return nil, err
	}
	vk, err := readPart(dir, m, vkFile)
	if err != nil {
		return nil, err
	}
	// The checksums matched: these are the bytes this package wrote, so the unchecked
	// decoders are safe.
	k.vk = &VerifyingKey{scheme: m.Scheme}
	switch m.Scheme {
	case Groth16:
		k.g16 = groth16.NewProvingKey(curve)
		err = k.g16.ReadDump(bytes.NewReader(pk))
		if err == nil {
			k.vk.g16 = groth16.NewVerifyingKey(curve)
			_, err = k.vk.g16.UnsafeReadFrom(bytes.NewReader(vk))
		}
	case PLONK:
		k.plk = plonk.NewProvingKey(curve)
		_, err = k.plk.UnsafeReadFrom(bytes.NewReader(pk))
		if err == nil {
			k.vk.plk = plonk.NewVerifyingKey(curve)
			_, err = k.vk.plk.UnsafeReadFrom(bytes.NewReader(vk))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: decode keys: %w", ErrCache, err)
	}
	return k, nil
}

// decodeCS decodes a cached constraint system.
func decodeCS(scheme Scheme, b []byte) (constraint.ConstraintSystem, error) {
	var ccs constraint.ConstraintSystem
	if scheme == Groth16 {
		ccs = groth16.NewCS(curve)
	} else {
		ccs = plonk.NewCS(curve)
	}
	if _, err := ccs.ReadFrom(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("%w: decode %s: %w", ErrCache, ccsFile, err)
	}
	return ccs, nil
}

// writeCache writes k's parts to its directory, and the manifest m (with k's identity) last.
// The old manifest goes first, so that a crash halfway leaves a cache that is rebuilt, never
// one whose parts do not match.
func writeCache(k *Keys, m manifest) error {
	if err := os.MkdirAll(k.dir, 0o755); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(k.dir, manifestFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	m.Files = map[string]fileInfo{}
	parts := []struct {
		name  string
		write func(io.Writer) error
	}{
		{ccsFile, func(w io.Writer) error { _, err := k.ccs.WriteTo(w); return err }},
		{pkFile, k.writeProvingKey},
		{vkFile, func(w io.Writer) error { _, err := k.vk.writeRaw(w); return err }},
	}
	for _, p := range parts {
		var buf bytes.Buffer
		if err := p.write(&buf); err != nil {
			return fmt.Errorf("gnarkhost: encode %s: %w", p.name, err)
		}
		if err := writeFile(filepath.Join(k.dir, p.name), buf.Bytes()); err != nil {
			return err
		}
		m.Files[p.name] = fileInfo{Size: int64(buf.Len()), SHA256: sum(buf.Bytes())}
	}
	b, err := m.seal()
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(k.dir, manifestFile), b); err != nil {
		return err
	}
	return syncDir(k.dir)
}

// writeProvingKey writes the proving key in the fastest encoding to read back: a memory dump
// for Groth16, the raw (uncompressed, unchecked) encoding for PLONK, which has no dump.
func (k *Keys) writeProvingKey(w io.Writer) error {
	if k.Scheme == Groth16 {
		return k.g16.WriteDump(w)
	}
	_, err := k.plk.WriteRawTo(w)
	return err
}

// writeRaw writes the verifying key uncompressed, for the cache.
func (vk *VerifyingKey) writeRaw(w io.Writer) (int64, error) {
	if vk.scheme == Groth16 {
		return vk.g16.WriteRawTo(w)
	}
	return vk.plk.WriteRawTo(w)
}

// writeFile writes b to path through a temporary file that is synced and renamed over it, so
// that path holds either its old bytes or all of b.
func writeFile(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// syncDir syncs a directory, so that the renames into it are on disk.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// lock takes an advisory lock on path (made if missing): exclusive to set up and write a
// cache, shared to read one, so that two processes setting up the same circuit do it once
// and a reader never sees a cache halfway written. It returns the function that releases it.
func lock(path string, exclusive bool) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("gnarkhost: lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil // closing the file releases the lock
}

// sum is the hex SHA-256 of b.
func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
