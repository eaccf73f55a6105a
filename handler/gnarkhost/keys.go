package gnarkhost

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/consensys/gnark/backend"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/plonk"
	"github.com/consensys/gnark/backend/solidity"
	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/schema"

	"github.com/zkpaas/paas"
)

var (
	// ErrWitness is wrapped by the error of a proof whose assignment is not a witness of the
	// circuit: a wire left unset, or values that do not satisfy the constraints. Such a
	// failure is permanent: the same input fails the same way.
	ErrWitness = errors.New("gnarkhost: not a witness of the circuit")
	// ErrInvalidProof is wrapped by the errors of Verify for a proof that does not verify:
	// damaged, made for other public inputs, or with other keys.
	ErrInvalidProof = errors.New("gnarkhost: invalid proof")
)

// Keys are a circuit's constraint system, proving key and verifying key, as Setup returns
// them: ready to prove. Keys are safe for concurrent use; but gnark's provers use every core,
// so proofs run one at a time on a machine unless it has cores to spare (see Host).
type Keys struct {
	// ID and Scheme are the circuit's.
	ID     string
	Scheme Scheme
	// FromCache reports whether the keys were read from the cache; false means Setup ran.
	FromCache bool
	// CacheError says why a cache that was there was not used (damaged, made by another
	// version of gnark, for a changed circuit), or is nil.
	CacheError error

	ccs constraint.ConstraintSystem
	g16 groth16.ProvingKey // for Groth16
	plk plonk.ProvingKey   // for PLONK
	vk  *VerifyingKey
	dir string // the cache directory of these keys
	srs string // the id of the SRS of PLONK keys
}

// Constraints is the number of constraints of the circuit.
func (k *Keys) Constraints() int { return k.ccs.GetNbConstraints() }

// VerifyingKey returns the circuit's verifying key.
func (k *Keys) VerifyingKey() *VerifyingKey { return k.vk }

// Verify checks a proof made with these keys: see VerifyingKey.Verify.
func (k *Keys) Verify(p paas.Proof) error { return k.vk.Verify(p) }

// Prove proves the circuit on a full assignment (every wire set) and returns the proof,
// verified with the verifying key. Its Receipt is the proof in gnark's compressed encoding and
// its PublicValues the public witness in gnark's binary encoding. The proof targets
// Solidity verifiers (see VerifyingKey.ExportSolidity).
//
// Prove takes no context: gnark's provers cannot be stopped, and use every core while they
// run. An assignment that is not a witness gives an error wrapping ErrWitness, permanent.
func (k *Keys) Prove(assignment frontend.Circuit) (paas.Proof, error) {
	full, err := k.witness(assignment)
	if err != nil {
		return paas.Proof{}, err
	}
	return k.proveWitness(full)
}

// witness builds the full witness of assignment.
func (k *Keys) witness(assignment frontend.Circuit) (witness.Witness, error) {
	if err := checkAssignment(assignment); err != nil {
		return nil, paas.Permanent(fmt.Errorf("%w %q: %w", ErrWitness, k.ID, err))
	}
	full, err := frontend.NewWitness(assignment, curve.ScalarField())
	if err != nil {
		return nil, paas.Permanent(fmt.Errorf("%w %q: %w", ErrWitness, k.ID, err))
	}
	return full, nil
}

// variable is the type of a circuit's wires, which schema.Walk looks for.
var variable = reflect.TypeFor[frontend.Variable]()

// checkAssignment reports the first wire of assignment that is unset or not a field element.
// frontend.NewWitness finds those too, but then leaves behind a goroutine that never ends
// (gnark v0.14.0, frontend/witness.go): in a long-running node each bad input would leak one.
func checkAssignment(assignment frontend.Circuit) error {
	_, err := schema.Walk(curve.ScalarField(), assignment, variable, func(leaf schema.LeafInfo, v reflect.Value) error {
		var e fr.Element
		if !v.IsValid() || v.Interface() == nil {
			return fmt.Errorf("wire %s is not set", leaf.FullName())
		}
		if _, err := e.SetInterface(v.Interface()); err != nil {
			return fmt.Errorf("wire %s: %w", leaf.FullName(), err)
		}
		return nil
	})
	return err
}

// proveWitness proves a full witness, verifies the proof, and encodes it.
func (k *Keys) proveWitness(full witness.Witness) (paas.Proof, error) {
	public, err := full.Public()
	if err != nil {
		return paas.Proof{}, paas.Permanent(fmt.Errorf("%w %q: %w", ErrWitness, k.ID, err))
	}
	var receipt bytes.Buffer
	switch k.Scheme {
	case Groth16:
		proof, err := groth16.Prove(k.ccs, k.g16, full, solidity.WithProverTargetSolidityVerifier(backend.GROTH16))
		if err != nil {
			return paas.Proof{}, paas.Permanent(fmt.Errorf("%w %q: %w", ErrWitness, k.ID, err))
		}
		if _, err := proof.WriteTo(&receipt); err != nil {
			return paas.Proof{}, fmt.Errorf("gnarkhost: encode proof: %w", err)
		}
	case PLONK:
		proof, err := plonk.Prove(k.ccs, k.plk, full, solidity.WithProverTargetSolidityVerifier(backend.PLONK))
		if err != nil {
			return paas.Proof{}, paas.Permanent(fmt.Errorf("%w %q: %w", ErrWitness, k.ID, err))
		}
		if _, err := proof.WriteTo(&receipt); err != nil {
			return paas.Proof{}, fmt.Errorf("gnarkhost: encode proof: %w", err)
		}
	}
	pub, err := public.MarshalBinary()
	if err != nil {
		return paas.Proof{}, fmt.Errorf("gnarkhost: encode public witness: %w", err)
	}
	p := paas.Proof{Receipt: receipt.Bytes(), PublicValues: pub}
	// Read back as a verifier would, so that what is stored is what was verified. A failure
	// here is not the input's fault: transient, so the service tries again.
	if err := k.vk.Verify(p); err != nil {
		return paas.Proof{}, fmt.Errorf("gnarkhost: a fresh proof of %q failed verification: %w", k.ID, err)
	}
	return p, nil
}

// VerifyingKey checks the proofs of one circuit. It is all a verifier needs: write it with
// WriteTo and read it elsewhere with ReadVerifyingKey.
type VerifyingKey struct {
	scheme Scheme
	g16    groth16.VerifyingKey
	plk    plonk.VerifyingKey
}

// Scheme is the scheme of the key's circuit.
func (vk *VerifyingKey) Scheme() Scheme { return vk.scheme }

// Verify checks a proof made by Keys.Prove, or by a Host: its Receipt against its
// PublicValues. Both are decoded with every check gnark has (points on the curve, in the
// subgroup), since a stored proof is only as trusted as the store. A proof that does not
// verify gives an error wrapping ErrInvalidProof.
func (vk *VerifyingKey) Verify(p paas.Proof) error {
	public, err := PublicWitness(p)
	if err != nil {
		return err
	}
	switch vk.scheme {
	case Groth16:
		proof := groth16.NewProof(curve)
		if _, err := proof.ReadFrom(bytes.NewReader(p.Receipt)); err != nil {
			return fmt.Errorf("%w: decode: %w", ErrInvalidProof, err)
		}
		if err := groth16.Verify(proof, vk.g16, public, solidity.WithVerifierTargetSolidityVerifier(backend.GROTH16)); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidProof, err)
		}
	case PLONK:
		proof := plonk.NewProof(curve)
		if _, err := proof.ReadFrom(bytes.NewReader(p.Receipt)); err != nil {
			return fmt.Errorf("%w: decode: %w", ErrInvalidProof, err)
		}
		if err := plonk.Verify(proof, vk.plk, public, solidity.WithVerifierTargetSolidityVerifier(backend.PLONK)); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidProof, err)
		}
	default:
		return fmt.Errorf("gnarkhost: verifying key of unknown scheme %q", vk.scheme)
	}
	return nil
}

// PublicWitness decodes the public witness a proof carries in its PublicValues. Its
// Vector() is an fr.Vector of BN254 (github.com/consensys/gnark-crypto/ecc/bn254/fr), in
// the order of the circuit's public fields.
func PublicWitness(p paas.Proof) (witness.Witness, error) {
	public, err := witness.New(curve.ScalarField())
	if err != nil {
		return nil, err
	}
	if err := public.UnmarshalBinary(p.PublicValues); err != nil {
		return nil, fmt.Errorf("%w: decode public witness: %w", ErrInvalidProof, err)
	}
	return public, nil
}

// ExportSolidity writes a Solidity contract that verifies the circuit's proofs on Ethereum.
// Its pragma is as gnark writes it; pass solidity.WithPragmaVersion to change it.
func (vk *VerifyingKey) ExportSolidity(w io.Writer, opts ...solidity.ExportOption) error {
	if vk.scheme == Groth16 {
		// gnark's Groth16 contract hashes to the field with legacy Keccak256 unless told
		// otherwise, as the proofs of Keys.Prove do.
		return vk.g16.ExportSolidity(w, opts...)
	}
	return vk.plk.ExportSolidity(w, opts...)
}

// SolidityProof returns a proof's encoding for the contract of ExportSolidity: the bytes of
// its verifyProof's proof argument.
func (vk *VerifyingKey) SolidityProof(p paas.Proof) ([]byte, error) {
	var proof solidityProof
	var ok bool
	if vk.scheme == Groth16 {
		proof, ok = groth16.NewProof(curve).(solidityProof)
	} else {
		proof, ok = plonk.NewProof(curve).(solidityProof)
	}
	if !ok {
		return nil, fmt.Errorf("gnarkhost: %s proofs have no Solidity encoding", vk.scheme)
	}
	if _, err := proof.ReadFrom(bytes.NewReader(p.Receipt)); err != nil {
		return nil, fmt.Errorf("%w: decode: %w", ErrInvalidProof, err)
	}
	return proof.MarshalSolidity(), nil
}

// solidityProof is a BN254 proof of either scheme, which has an encoding for Solidity.
type solidityProof interface {
	io.ReaderFrom
	MarshalSolidity() []byte
}

// WriteTo writes the verifying key in gnark's compressed encoding, for ReadVerifyingKey.
func (vk *VerifyingKey) WriteTo(w io.Writer) (int64, error) {
	if vk.scheme == Groth16 {
		return vk.g16.WriteTo(w)
	}
	return vk.plk.WriteTo(w)
}

// ReadVerifyingKey reads a verifying key written by VerifyingKey.WriteTo, with every check
// gnark has.
func ReadVerifyingKey(scheme Scheme, r io.Reader) (*VerifyingKey, error) {
	vk := &VerifyingKey{scheme: scheme}
	var err error
	switch scheme {
	case Groth16:
		vk.g16 = groth16.NewVerifyingKey(curve)
		_, err = vk.g16.ReadFrom(r)
	case PLONK:
		vk.plk = plonk.NewVerifyingKey(curve)
		_, err = vk.plk.ReadFrom(r)
	default:
		return nil, fmt.Errorf("gnarkhost: unknown scheme %q", scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("gnarkhost: read verifying key: %w", err)
	}
	return vk, nil
}
