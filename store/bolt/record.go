package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/google/uuid"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
)

// CorruptRecordError reports a stored value that cannot be read back: an unknown format
// version, bytes that fail their checksum or do not parse, a record that is not a valid task,
// or an index entry that disagrees with the record it points to. The store returns it instead
// of skipping the task, so that a damaged task is seen rather than silently lost.
type CorruptRecordError struct {
	// ID is the task the value belongs to, taken from the bucket key when known. It is zero
	// only when neither the key nor the value names a task.
	ID  paas.TaskID
	Err error
}

// Error names the task, when known, and the cause.
func (e *CorruptRecordError) Error() string {
	if e.ID.IsZero() {
		return fmt.Sprintf("bolt: corrupt record: %v", e.Err)
	}
	return fmt.Sprintf("bolt: corrupt record of task %s: %v", e.ID, e.Err)
}

// Unwrap returns the cause.
func (e *CorruptRecordError) Unwrap() error { return e.Err }

// Format versions, the first byte of every stored value. A new format gets a new version and
// keeps decoding the old ones, so a file written by an older release stays readable.
const (
	recordV1 byte = 1
	proofV1  byte = 1
)

// Stored values end with a CRC-32C of everything before it. bbolt checksums only its meta
// pages, so without this a flipped bit in a data page could decode as a different, valid
// looking task instead of failing.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const crcLen = 4

// The times a record may hold: years 1 to 9999, the range within which time.Unix round-trips
// and every encoding of a time agrees.
var (
	minUnix = time.Date(1, time.January, 1, 0, 0, 0, 0, time.UTC).Unix()
	maxUnix = time.Date(9999, time.December, 31, 23, 59, 59, 999_999_999, time.UTC).Unix()
)

// encodeRecord returns the stored form of rec, version 1:
//
//	version        1 byte, 1
//	ID             16 bytes
//	Seq            uvarint
//	Key            bytes
//	RoutingKey     bytes
//	Backend        bytes
//	Program        bytes
//	Weight         varint
//	State          1 byte
//	Attempts       varint
//	LastError      bytes
//	NextAttemptAt  time
//	CreatedAt      time
//	UpdatedAt      time
//	checksum       4 bytes, big-endian: CRC-32C of everything before it
//
// where bytes is a uvarint length followed by the bytes, and time is one byte, 0 for the zero
// time or 1 followed by the Unix seconds (varint) and nanoseconds (uvarint). Times read back in
// UTC. A compact binary form rather than JSON because it round-trips every field exactly: JSON
// would rewrite a LastError that is not valid UTF-8.
//
// It returns an error for a record that could not be read back as it is: see validateRecord.
func encodeRecord(rec paas.TaskRecord) ([]byte, error) {
	if err := validateRecord(rec); err != nil {
		return nil, err
	}
	b := make([]byte, 0, maxRecordLen(rec))
	b = append(b, recordV1)
	b = append(b, rec.ID[:]...)
	b = binary.AppendUvarint(b, rec.Seq)
	b = appendBytes(b, []byte(rec.Key))
	b = appendBytes(b, []byte(rec.RoutingKey))
	b = appendBytes(b, []byte(rec.Backend))
	b = appendBytes(b, rec.Program)
	b = binary.AppendVarint(b, rec.Weight)
	b = append(b, byte(rec.State))
	b = binary.AppendVarint(b, int64(rec.Attempts))
	b = appendBytes(b, []byte(rec.LastError))
	b = appendTime(b, rec.NextAttemptAt)
	b = appendTime(b, rec.CreatedAt)
	b = appendTime(b, rec.UpdatedAt)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// maxRecordLen returns an upper bound of the length of rec encoded.
func maxRecordLen(rec paas.TaskRecord) int {
	const fixed = 1 + 16 + 1 + crcLen // version, ID, State, checksum
	const varints = 8                 // Seq, Weight, Attempts, and 5 lengths
	const times = 3 * (1 + 2*binary.MaxVarintLen64)
	return fixed + varints*binary.MaxVarintLen64 + times +
		len(rec.Key) + len(rec.RoutingKey) + len(rec.Backend) + len(rec.Program) + len(rec.LastError)
}

// decodeRecord parses a value of the tasks bucket. id is the bucket key, or zero if unknown;
// when given, the record must hold the same id. Every error is a *CorruptRecordError. The
// record shares no memory with b, which may be bbolt's memory map, valid only in the
// transaction.
func decodeRecord(id paas.TaskID, b []byte) (paas.TaskRecord, error) {
	corrupt := func(format string, args ...any) error {
		return &CorruptRecordError{ID: id, Err: fmt.Errorf(format, args...)}
	}
	body, err := checkEnvelope(b, recordV1)
	if err != nil {
		return paas.TaskRecord{}, &CorruptRecordError{ID: id, Err: err}
	}
	r := reader{b: body}
	var rec paas.TaskRecord
	copy(rec.ID[:], r.fixed(16))
	if id.IsZero() && r.err == nil {
		id = rec.ID // name the task in later errors as best we can
	}
	rec.Seq = r.uvarint()
	rec.Key = paas.TaskKey(r.bytes())
	rec.RoutingKey = paas.RoutingKey(r.bytes())
	rec.Backend = paas.Backend(r.bytes())
	rec.Program = r.bytesOrNil()
	rec.Weight = r.varint()
	rec.State = paas.TaskState(r.byte())
	rec.Attempts = r.int()
	rec.LastError = string(r.bytes())
	rec.NextAttemptAt = r.time()
	rec.CreatedAt = r.time()
	rec.UpdatedAt = r.time()
	if r.err != nil {
		return paas.TaskRecord{}, corrupt("%w", r.err)
	}
	if len(r.b) != 0 {
		return paas.TaskRecord{}, corrupt("%d trailing bytes", len(r.b))
	}
	if err := validateRecord(rec); err != nil {
		return paas.TaskRecord{}, corrupt("%w", err)
	}
	if rec.ID != id {
		return paas.TaskRecord{}, corrupt("stored under its id, the record holds task %s", rec.ID)
	}
	return rec, nil
}

// validateRecord checks what a stored record must satisfy, on the way in so that the store
// never writes what it would reject on the way out.
func validateRecord(rec paas.TaskRecord) error {
	switch {
	case rec.ID.IsZero():
		return errors.New("zero task id")
	case rec.Seq == 0:
		return errors.New("zero seq")
	case !rec.State.Valid():
		return fmt.Errorf("invalid state %d", uint8(rec.State))
	}
	for _, t := range []struct {
		name string
		t    time.Time
	}{{"NextAttemptAt", rec.NextAttemptAt}, {"CreatedAt", rec.CreatedAt}, {"UpdatedAt", rec.UpdatedAt}} {
		if !t.t.IsZero() && (t.t.Unix() < minUnix || t.t.Unix() > maxUnix) {
			return fmt.Errorf("%s %v outside years 1 to 9999", t.name, t.t)
		}
	}
	return nil
}

// encodeProof returns the stored form of a proof, version 1: the version byte, then Backend,
// Receipt and PublicValues each as a uvarint length and the bytes, then a CRC-32C as in a
// record. An empty Receipt or PublicValues reads back as nil.
func encodeProof(p handler.Proof) []byte {
	b := make([]byte, 0, 1+3*binary.MaxVarintLen64+len(p.Backend)+len(p.Receipt)+len(p.PublicValues)+crcLen)
	b = append(b, proofV1)
	b = appendBytes(b, []byte(p.Backend))
	b = appendBytes(b, p.Receipt)
	b = appendBytes(b, p.PublicValues)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeProof parses a value of the proofs bucket stored under id. Every error is a
// *CorruptRecordError naming id. The proof shares no memory with b.
func decodeProof(id paas.TaskID, b []byte) (handler.Proof, error) {
	body, err := checkEnvelope(b, proofV1)
	if err != nil {
		return handler.Proof{}, &CorruptRecordError{ID: id, Err: fmt.Errorf("proof: %w", err)}
	}
	r := reader{b: body}
	p := handler.Proof{
		Backend:      paas.Backend(r.bytes()),
		Receipt:      r.bytesOrNil(),
		PublicValues: r.bytesOrNil(),
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return handler.Proof{}, &CorruptRecordError{ID: id, Err: fmt.Errorf("proof: %w", r.err)}
	}
	return p, nil
}

// checkEnvelope checks the version byte and the checksum of a stored value and returns what
// lies between them.
func checkEnvelope(b []byte, version byte) ([]byte, error) {
	switch {
	case len(b) == 0:
		return nil, errors.New("empty value")
	case b[0] != version:
		return nil, fmt.Errorf("unknown format version %d", b[0])
	case len(b) < 1+crcLen:
		return nil, fmt.Errorf("truncated: %d bytes", len(b))
	}
	end := len(b) - crcLen
	if want, got := binary.BigEndian.Uint32(b[end:]), crc32.Checksum(b[:end], castagnoli); want != got {
		return nil, fmt.Errorf("checksum mismatch: stored %08x, computed %08x", want, got)
	}
	return b[1:end], nil
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// reader parses the fields of a value. After the first error every read returns a zero value
// and err keeps that error, so a decoder checks once at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
	r.b = nil
}

func (r *reader) fixed(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.fail("truncated: want %d bytes, have %d", n, len(r.b))
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if v := r.fixed(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.varintFail(n)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.varintFail(n)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// varintFail records the failure of a varint read that returned n <= 0.
func (r *reader) varintFail(n int) {
	if n == 0 {
		r.fail("truncated: varint cut short")
	} else {
		r.fail("varint overflows 64 bits")
	}
}

func (r *reader) int() int {
	v := r.varint()
	if int64(int(v)) != v {
		r.fail("integer %d overflows int", v)
		return 0
	}
	return int(v)
}

// bytes reads a length-prefixed field and returns a copy, never nil.
func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("truncated: field of %d bytes, have %d", n, len(r.b))
		return nil
	}
	return append([]byte{}, r.fixed(int(n))...)
}

// bytesOrNil is bytes with an empty field read as nil, the form a record or proof without
// a program or receipt is usually built with.
func (r *reader) bytesOrNil() []byte {
	if v := r.bytes(); len(v) > 0 {
		return v
	}
	return nil
}

func (r *reader) time() time.Time {
	switch flag := r.byte(); {
	case r.err != nil:
		return time.Time{}
	case flag == 0:
		return time.Time{}
	case flag != 1:
		r.fail("bad time flag %d", flag)
		return time.Time{}
	}
	sec, nsec := r.varint(), r.uvarint()
	switch {
	case r.err != nil:
		return time.Time{}
	case nsec >= 1e9:
		r.fail("bad nanoseconds %d", nsec)
		return time.Time{}
	case sec < minUnix || sec > maxUnix:
		r.fail("time %d outside years 1 to 9999", sec)
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// idFromBytes returns the TaskID stored as the 16 bytes of b.
func idFromBytes(b []byte) (paas.TaskID, bool) {
	u, err := uuid.FromBytes(b)
	return paas.TaskID(u), err == nil
}
