package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/zkpaas/paas"
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
	if err := validateRecord(&rec); err != nil {
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
	var rec paas.TaskRecord
	if err := decodeRecordTo(&rec, id, b, nil); err != nil {
		return paas.TaskRecord{}, err
	}
	return rec, nil
}

// decodeRecordTo is decodeRecord into *rec, which must be zero, with the fields of variable
// length copied into memory from a (see arena). After an error *rec holds a part of the record.
func decodeRecordTo(rec *paas.TaskRecord, id paas.TaskID, b []byte, a *arena) error {
	corrupt := func(format string, args ...any) error {
		return &CorruptRecordError{ID: id, Err: fmt.Errorf(format, args...)}
	}
	body, err := checkEnvelope(b, recordV1, recordV2)
	if err != nil {
		return &CorruptRecordError{ID: id, Err: err}
	}
	r := reader{b: body}
	copy(rec.ID[:], r.fixed(16))
	if id.IsZero() && r.err == nil {
		id = rec.ID // name the task in later errors as best we can
	}
	rec.Seq = r.uvarint()
	rec.Key = paas.TaskKey(a.string(r.field()))
	rec.RoutingKey = paas.RoutingKey(a.intern(r.field()))
	rec.Backend = paas.Backend(a.intern(r.field()))
	rec.Program = a.bytes(r.field())
	rec.Weight = r.varint()
	rec.Priority = r.int()
	rec.DependsOn = r.ids(a)
	rec.Timeout = time.Duration(r.varint())
	rec.State = paas.TaskState(r.byte())
	rec.Attempts = r.int()
	rec.Restarts = r.int()
	rec.Checkpoint = a.bytes(r.field())
	rec.LastError = a.string(r.field())
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
			return corrupt("unknown flags %#x", flags)
		}
	}
	if r.err != nil {
		return corrupt("%w", r.err)
	}
	if len(r.b) != 0 {
		return corrupt("%d trailing bytes", len(r.b))
	}
	if err := validateRecord(rec); err != nil {
		return corrupt("%w", err)
	}
	if rec.ID != id {
		return corrupt("stored under its id, the record holds task %s", rec.ID)
	}
	return nil
}

// validateRecord checks what a stored record must satisfy, on the way in so that the store
// never writes what it would reject on the way out.
func validateRecord(rec *paas.TaskRecord) error {
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

// flagNoTimeout is the bit of a record's flags byte for TaskRecord.NoTimeout.
const flagNoTimeout byte = 1
