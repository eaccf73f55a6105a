package paas

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
)

// Backend names a proving backend. Each backend has its own worker pool, sized by
// Config.Workers. The type is open: any non-empty string names a backend, so that users can add
// their own beside the ones below.
type Backend string

// Backends known to paas. Others may be declared by users.
const (
	BackendSP1    Backend = "sp1"
	BackendRisc0  Backend = "risc0"
	BackendNative Backend = "native" // runs the program without producing a proof
)

// RoutingKey selects the ProofHandler that proves a program.
type RoutingKey string

// ProgramType is a program to prove: any value that names its handler. Its encoding by the
// service's Codec, together with its routing key and the backend, identifies the task, so it
// must be deterministic: equal programs must encode to equal bytes.
type ProgramType interface {
	RoutingKey() RoutingKey
}

// Weighted is implemented by programs that need more than one unit of their backend's capacity,
// such as a proof that takes two of four GPU slots. Programs that do not implement it weigh 1.
type Weighted interface {
	Weight() int64
}

// WeightOf returns the weight of p: p.Weight() if p implements Weighted, else 1.
func WeightOf(p ProgramType) int64 {
	if w, ok := p.(Weighted); ok {
		return w.Weight()
	}
	return 1
}

// Codec encodes programs at Submit and decodes them in handlers.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// JSONCodec is the default Codec: encoding/json, which encodes struct fields in declaration
// order and map keys sorted, and so is deterministic.
type JSONCodec struct{}

// Marshal implements Codec.
func (JSONCodec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal implements Codec.
func (JSONCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// TaskKey is the identity of a task's work: a digest of its routing key, encoded program and
// backend. A store keeps at most one task per key. It is binary (the 32 bytes of a SHA-256
// digest, held in a string so that it can key a map); String gives it in hex.
type TaskKey string

// String returns the key in hex.
func (k TaskKey) String() string { return hex.EncodeToString([]byte(k)) }

// KeyOf returns the TaskKey of an encoded program for a backend.
func KeyOf(rk RoutingKey, program []byte, backend Backend) TaskKey {
	h := sha256.New()
	// Length prefixes keep ("ab","c") and ("a","bc") apart.
	for _, part := range [][]byte{[]byte(rk), program, []byte(backend)} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	var sum [sha256.Size]byte
	return TaskKey(h.Sum(sum[:0])) // one allocation, the string's
}
