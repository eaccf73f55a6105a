package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"time"

	"github.com/zkpaas/paas"
)

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

// field reads a length-prefixed field and returns it in place, not a copy: it may be bbolt's
// memory, valid only in the transaction.
func (r *reader) field() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("truncated: field of %d bytes, have %d", n, len(r.b))
		return nil
	}
	return r.fixed(int(n))
}

// bytes reads a length-prefixed field and returns a copy, never nil.
func (r *reader) bytes() []byte {
	v := r.field()
	if r.err != nil {
		return nil
	}
	return append([]byte{}, v...)
}

// bytesOrNil is bytes with an empty field read as nil, the form a record or proof without
// a program or receipt is usually built with.
func (r *reader) bytesOrNil() []byte {
	if v := r.bytes(); len(v) > 0 {
		return v
	}
	return nil
}

// ids reads a list of task ids written by encodeRecord, a count then the ids, into memory
// from a (see arena). An empty list reads as nil.
func (r *reader) ids(a *arena) []paas.TaskID {
	const idLen = len(paas.TaskID{})
	n := r.uvarint()
	switch {
	case r.err != nil || n == 0:
		return nil
	case n > uint64(len(r.b)/idLen): // checked before allocating n ids
		r.fail("truncated: %d task ids, have %d bytes", n, len(r.b))
		return nil
	}
	ids := a.taskIDs(int(n))
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
