package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"time"

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
	recordV2 byte = 2
	proofV1  byte = 1
	indexV1  byte = 1
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

// encodeRecord returns the stored form of rec, version 2:
//
//	version           1 byte, 2
//	ID                16 bytes
//	Seq               uvarint
//	Key               bytes
//	RoutingKey        bytes
//	Backend           bytes
//	Program           bytes
//	Weight            varint
//	Priority          varint
//	DependsOn         uvarint count, then 16 bytes per id, none of them zero
//	Timeout           varint, nanoseconds, not negative
//	State             1 byte
//	Attempts          varint
//	Restarts          varint, not negative
//	Checkpoint        bytes
//	LastError         bytes
//	FailedDependency  one byte, 0 for the zero id or 1 followed by the 16 bytes of another one
//	NextAttemptAt     time
//	WaitingSince      time
//	CreatedAt         time
//	UpdatedAt         time
//	Version           uvarint                  (version 2 on)
//	Interruptions     varint, not negative     (version 2 on)
//	Runs              varint, not negative     (version 2 on)
//	FailedDependencyState  1 byte, 0 or a state  (version 2 on)
//	flags             1 byte: 1 for NoTimeout  (version 2 on)
//	checksum          4 bytes, big-endian: CRC-32C of everything before it
//
// Version 1 is version 2 without the fields marked "version 2 on", which read back as zero.
//
// where bytes is a uvarint length followed by the bytes, and time is one byte, 0 for the zero
// time or 1 followed by the Unix seconds (varint) and nanoseconds (uvarint). Times read back in
// UTC; an empty Program, DependsOn or Checkpoint reads back as nil. A compact binary form rather
// than JSON because it round-trips every field exactly: JSON would rewrite a LastError that is
// not valid UTF-8.
//
// Priority, DependsOn, Timeout, Restarts, Checkpoint, FailedDependency and WaitingSince joined
// version 1 in place, before any file was written with it: no file holds version 1 in an
// older layout, so it needs no version of its own.
//
// It returns an error for a record that could not be read back as it is: see validateRecord.
func encodeRecord(rec paas.TaskRecord) ([]byte, error) {
	if err := validateRecord(rec); err != nil {
		return nil, err
	}
	b := make([]byte, 0, maxRecordLen(rec))
	b = append(b, recordV2)
	b = append(b, rec.ID[:]...)
	b = binary.AppendUvarint(b, rec.Seq)
	b = appendBytes(b, []byte(rec.Key))
	b = appendBytes(b, []byte(rec.RoutingKey))
	b = appendBytes(b, []byte(rec.Backend))
	b = appendBytes(b, rec.Program)
	b = binary.AppendVarint(b, rec.Weight)
	b = binary.AppendVarint(b, int64(rec.Priority))
	b = binary.AppendUvarint(b, uint64(len(rec.DependsOn)))
	for _, dep := range rec.DependsOn {
		b = append(b, dep[:]...)
	}
	b = binary.AppendVarint(b, int64(rec.Timeout))
	b = append(b, byte(rec.State))
	b = binary.AppendVarint(b, int64(rec.Attempts))
	b = binary.AppendVarint(b, int64(rec.Restarts))
	b = appendBytes(b, rec.Checkpoint)
	b = appendBytes(b, []byte(rec.LastError))
	b = appendID(b, rec.FailedDependency)
	b = appendTime(b, rec.NextAttemptAt)
	b = appendTime(b, rec.WaitingSince)
	b = appendTime(b, rec.CreatedAt)
	b = appendTime(b, rec.UpdatedAt)
	b = binary.AppendUvarint(b, rec.Version)
	b = binary.AppendVarint(b, int64(rec.Interruptions))
	b = binary.AppendVarint(b, int64(rec.Runs))
	b = append(b, byte(rec.FailedDependencyState))
	var flags byte
	if rec.NoTimeout {
		flags |= flagNoTimeout
	}
	b = append(b, flags)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// maxRecordLen returns an upper bound of the length of rec encoded.
func maxRecordLen(rec paas.TaskRecord) int {
	const idLen = len(paas.TaskID{})
	const fixed = 1 + idLen + 1 + 1 + idLen + 2 + crcLen // version, ID, State, FailedDependency, its state and flags, checksum
	const varints = 16                                   // Seq, Weight, Priority, Timeout, Attempts, Restarts, Version, Interruptions, Runs, and 7 lengths or counts
	const times = 4 * (1 + 2*binary.MaxVarintLen64)
	return fixed + varints*binary.MaxVarintLen64 + times + idLen*len(rec.DependsOn) +
		len(rec.Key) + len(rec.RoutingKey) + len(rec.Backend) + len(rec.Program) + len(rec.Checkpoint) + len(rec.LastError)
}

// decodeRecord parses a value of the tasks bucket. id is the bucket key, or zero if unknown;
// when given, the record must hold the same id. Every error is a *CorruptRecordError. The
// record shares no memory with b, which may be bbolt's memory map, valid only in the
// transaction.
func decodeRecord(id paas.TaskID, b []byte) (paas.TaskRecord, error) {
	corrupt := func(format string, args ...any) error {
		return &CorruptRecordError{ID: id, Err: fmt.Errorf(format, args...)}
	}
	body, err := checkEnvelope(b, recordV1, recordV2)
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
	rec.Priority = r.int()
	rec.DependsOn = r.ids()
	rec.Timeout = time.Duration(r.varint())
	rec.State = paas.TaskState(r.byte())
	rec.Attempts = r.int()
	rec.Restarts = r.int()
	rec.Checkpoint = r.bytesOrNil()
	rec.LastError = string(r.bytes())
	rec.FailedDependency = r.optionalID()
	rec.NextAttemptAt = r.time()
	rec.WaitingSince = r.time()
	rec.CreatedAt = r.time()
	rec.UpdatedAt = r.time()
	if b[0] >= recordV2 {
		rec.Version = r.uvarint()
		rec.Interruptions = r.int()
		rec.Runs = r.int()
		rec.FailedDependencyState = paas.TaskState(r.byte())
		flags := r.byte()
		rec.NoTimeout = flags&flagNoTimeout != 0
		if r.err == nil && flags&^flagNoTimeout != 0 {
			return paas.TaskRecord{}, corrupt("unknown flags %#x", flags)
		}
	}
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
	case rec.Timeout < 0:
		return fmt.Errorf("negative timeout %s", rec.Timeout)
	case rec.Restarts < 0:
		return fmt.Errorf("negative restarts %d", rec.Restarts)
	case rec.Interruptions < 0:
		return fmt.Errorf("negative interruptions %d", rec.Interruptions)
	case rec.Runs < 0:
		return fmt.Errorf("negative runs %d", rec.Runs)
	case rec.FailedDependencyState != 0 && !rec.FailedDependencyState.Valid():
		return fmt.Errorf("invalid state %d of the failed dependency", uint8(rec.FailedDependencyState))
	}
	for i, dep := range rec.DependsOn {
		if dep.IsZero() {
			return fmt.Errorf("zero task id in DependsOn, at %d", i)
		}
	}
	for _, t := range []struct {
		name string
		t    time.Time
	}{
		{"NextAttemptAt", rec.NextAttemptAt}, {"WaitingSince", rec.WaitingSince},
		{"CreatedAt", rec.CreatedAt}, {"UpdatedAt", rec.UpdatedAt},
	} {
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

// indexFinished is the flag of an index entry whose task is in a final state. No other flag
// is defined: an entry with another bit set is damaged.
const indexFinished byte = 1

// indexEntry is an entry of the index bucket, decoded.
type indexEntry struct {
	seq      uint64
	finished bool
	id       paas.TaskID
	// key is the TaskKey. It points into the stored value, which may be bbolt's memory map,
	// valid only in the transaction: convert it to copy it.
	key []byte
}

// encodeIndexEntry returns the value of a task's entry in the index bucket, stored under its
// Seq (8 bytes, big-endian), version 1:
//
//	version   1 byte, 1
//	flags     1 byte: indexFinished if the task is in a final state, else 0
//	ID        16 bytes
//	Key       the bytes up to the checksum, at least one
//	checksum  4 bytes, big-endian: CRC-32C of everything before it
//
// The entry changes only when its task moves between unfinished and final, and then only its
// flags (and checksum), so it keeps its size.
func encodeIndexEntry(finished bool, id paas.TaskID, key paas.TaskKey) []byte {
	var flags byte
	if finished {
		flags = indexFinished
	}
	b := make([]byte, 0, 2+len(id)+len(key)+crcLen)
	b = append(b, indexV1, flags)
	b = append(b, id[:]...)
	b = append(b, key...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeIndexEntry parses the entry k → v of the index bucket. Every error is a
// *CorruptRecordError, naming the task if the entry passed its checksum and holds an id.
func decodeIndexEntry(k, v []byte) (indexEntry, error) {
	var e indexEntry
	if len(k) != 8 {
		return e, &CorruptRecordError{Err: fmt.Errorf("index entry under a key of %d bytes, not a seq: %x", len(k), k)}
	}
	e.seq = binary.BigEndian.Uint64(k)
	body, err := checkEnvelope(v, indexV1)
	if err != nil {
		return e, &CorruptRecordError{Err: fmt.Errorf("index entry at seq %d: %w", e.seq, err)}
	}
	const idEnd = 1 + len(paas.TaskID{})
	if len(body) >= idEnd {
		e.id = paas.TaskID(body[1:idEnd])
	}
	switch {
	case len(body) <= idEnd:
		err = fmt.Errorf("truncated: %d bytes, no key", len(v))
	case body[0]&^indexFinished != 0:
		err = fmt.Errorf("unknown flags %#x", body[0])
	case e.id.IsZero():
		err = errors.New("zero task id")
	default:
		e.finished = body[0]&indexFinished != 0
		e.key = body[idEnd:]
		return e, nil
	}
	return e, &CorruptRecordError{ID: e.id, Err: fmt.Errorf("index entry at seq %d: %w", e.seq, err)}
}

// flagNoTimeout is the bit of a record's flags byte for TaskRecord.NoTimeout.
const flagNoTimeout byte = 1

// checkEnvelope checks the version byte, which must be one of versions, and the checksum of a
// stored value and returns what lies between them.
func checkEnvelope(b []byte, versions ...byte) ([]byte, error) {
	switch {
	case len(b) == 0:
		return nil, errors.New("empty value")
	case !slices.Contains(versions, b[0]):
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

// appendID appends an optional task id: 0 for the zero id, else 1 and the id.
func appendID(b []byte, id paas.TaskID) []byte {
	if id.IsZero() {
		return append(b, 0)
	}
	return append(append(b, 1), id[:]...)
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

// ids reads a list of task ids written by encodeRecord: a count, then the ids. An empty list
// reads as nil.
func (r *reader) ids() []paas.TaskID {
	const idLen = len(paas.TaskID{})
	n := r.uvarint()
	switch {
	case r.err != nil || n == 0:
		return nil
	case n > uint64(len(r.b)/idLen): // checked before allocating n ids
		r.fail("truncated: %d task ids, have %d bytes", n, len(r.b))
		return nil
	}
	ids := make([]paas.TaskID, n)
	for i := range ids {
		copy(ids[i][:], r.fixed(idLen))
	}
	return ids
}

// optionalID reads an id written by appendID. A flag 1 followed by the zero id is refused: it
// is not what appendID writes, and would not round-trip.
func (r *reader) optionalID() paas.TaskID {
	var id paas.TaskID
	switch flag := r.byte(); {
	case r.err != nil || flag == 0:
		return id
	case flag != 1:
		r.fail("bad task id flag %d", flag)
		return id
	}
	copy(id[:], r.fixed(len(id)))
	if r.err == nil && id.IsZero() {
		r.fail("zero task id after a flag saying there is one")
	}
	return id
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
