package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
)

// fullRecord has every field set, with times in three locations and nanosecond parts.
func fullRecord() paas.TaskRecord {
	base := time.Date(2031, time.March, 4, 5, 6, 7, 891_234_567, time.FixedZone("X", 3600))
	return paas.TaskRecord{
		ID:            paas.NewTaskID(),
		Seq:           1 << 40,
		Key:           paas.KeyOf("fib", []byte(`{"n":10}`), paas.BackendSP1),
		RoutingKey:    "fib",
		Backend:       paas.BackendSP1,
		Program:       []byte(`{"n":10}`),
		Weight:        -7,
		State:         paas.Retrying,
		Attempts:      3,
		LastError:     "not UTF-8: \xff\xfe",
		NextAttemptAt: base.Add(time.Minute),
		CreatedAt:     base.UTC(),
		UpdatedAt:     base.Local(),
	}
}

func TestRecordRoundTrip(t *testing.T) {
	minimal := paas.TaskRecord{ID: paas.NewTaskID(), Seq: 1, State: paas.Pending}
	edge := fullRecord()
	edge.CreatedAt = time.Date(1, time.January, 1, 0, 0, 0, 1, time.UTC)
	edge.UpdatedAt = time.Date(9999, time.December, 31, 23, 59, 59, 999_999_999, time.UTC)
	edge.Weight, edge.Attempts = 1<<62, -1

	for name, rec := range map[string]paas.TaskRecord{"full": fullRecord(), "minimal": minimal, "edge": edge} {
		t.Run(name, func(t *testing.T) {
			b, err := encodeRecord(rec)
			require.NoError(t, err)
			require.LessOrEqual(t, len(b), maxRecordLen(rec))
			got, err := decodeRecord(rec.ID, b)
			require.NoError(t, err)
			for _, p := range [][2]time.Time{
				{rec.NextAttemptAt, got.NextAttemptAt}, {rec.CreatedAt, got.CreatedAt}, {rec.UpdatedAt, got.UpdatedAt},
			} {
				require.True(t, p[0].Equal(p[1]), "want %v, got %v", p[0], p[1])
				require.Equal(t, p[0].IsZero(), p[1].IsZero())
			}
			rec.NextAttemptAt, rec.CreatedAt, rec.UpdatedAt = got.NextAttemptAt, got.CreatedAt, got.UpdatedAt
			require.Equal(t, rec, got)
		})
	}
}

func TestDecodeRecordCopies(t *testing.T) {
	rec := fullRecord()
	b, err := encodeRecord(rec)
	require.NoError(t, err)
	got, err := decodeRecord(rec.ID, b)
	require.NoError(t, err)
	// bbolt's values live in a read-only memory map that is reused after the transaction:
	// nothing decoded may point into it.
	for i := range b {
		b[i] = 0
	}
	require.Equal(t, string(rec.Program), string(got.Program))
	require.Equal(t, rec.LastError, got.LastError)
}

func TestEncodeRecordRefusesInvalid(t *testing.T) {
	for name, change := range map[string]func(*paas.TaskRecord){
		"zero id":    func(r *paas.TaskRecord) { r.ID = paas.TaskID{} },
		"zero seq":   func(r *paas.TaskRecord) { r.Seq = 0 },
		"bad state":  func(r *paas.TaskRecord) { r.State = 0 },
		"year 10000": func(r *paas.TaskRecord) { r.UpdatedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"year 0":     func(r *paas.TaskRecord) { r.NextAttemptAt = time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC) },
	} {
		t.Run(name, func(t *testing.T) {
			rec := fullRecord()
			change(&rec)
			_, err := encodeRecord(rec)
			require.Error(t, err)
		})
	}
}

func TestDecodeRecordCorrupt(t *testing.T) {
	rec := fullRecord()
	valid, err := encodeRecord(rec)
	require.NoError(t, err)
	// resum replaces the checksum of b, so that the damage gets past it to the check under test.
	resum := func(b []byte) []byte {
		b = append([]byte(nil), b[:len(b)-crcLen]...)
		return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	}
	// The state byte is the first one that differs from the encoding with another state.
	other := rec
	other.State = paas.Cancelled
	otherBytes, err := encodeRecord(other)
	require.NoError(t, err)
	stateAt := -1
	for i := range valid {
		if valid[i] != otherBytes[i] {
			stateAt = i
			break
		}
	}
	require.GreaterOrEqual(t, stateAt, 0)
	withState := func(s byte) []byte {
		b := append([]byte(nil), valid...)
		b[stateAt] = s
		return resum(b)
	}

	for _, tc := range []struct {
		name, want string
		id         paas.TaskID
		b          []byte
	}{
		{"empty", "empty value", rec.ID, nil},
		{"unknown version", "unknown format version 2", rec.ID, append([]byte{2}, valid[1:]...)},
		{"too short", "truncated", rec.ID, []byte{1, 0, 0}},
		{"truncated", "checksum mismatch", rec.ID, valid[:len(valid)-7]},
		{"truncated with checksum", "truncated", rec.ID, resum(valid[:len(valid)-7])},
		{"trailing bytes", "2 trailing bytes", rec.ID, resum(append(append([]byte(nil), valid[:len(valid)-crcLen]...), 0, 0, 0, 0, 0, 0))},
		{"flipped bit", "checksum mismatch", rec.ID, func() []byte { b := append([]byte(nil), valid...); b[20] ^= 1; return b }()},
		{"invalid state", "invalid state 200", rec.ID, withState(200)},
		{"other id", "holds task " + rec.ID.String(), paas.NewTaskID(), valid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeRecord(tc.id, tc.b)
			var corrupt *CorruptRecordError
			require.ErrorAs(t, err, &corrupt)
			require.Equal(t, tc.id, corrupt.ID, "the error must name the task of the bucket key")
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, tc.id.String())
		})
	}

	t.Run("unknown id", func(t *testing.T) {
		// Without a bucket key, the error names the task the bytes claim to be, if they do.
		_, err := decodeRecord(paas.TaskID{}, withState(200))
		var corrupt *CorruptRecordError
		require.ErrorAs(t, err, &corrupt)
		require.Equal(t, rec.ID, corrupt.ID)
	})
}

func TestProofRoundTrip(t *testing.T) {
	id := paas.NewTaskID()
	for name, p := range map[string]handler.Proof{
		"full":   {Backend: paas.BackendRisc0, Receipt: []byte("receipt"), PublicValues: []byte("55")},
		"native": {Backend: paas.BackendNative, PublicValues: []byte("1")},
		"zero":   {},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := decodeProof(id, encodeProof(p))
			require.NoError(t, err)
			require.Equal(t, p, got)
		})
	}

	valid := encodeProof(handler.Proof{Backend: paas.BackendSP1, Receipt: []byte("r")})
	for name, b := range map[string][]byte{
		"empty":           nil,
		"unknown version": append([]byte{7}, valid[1:]...),
		"truncated":       valid[:len(valid)-2],
	} {
		t.Run(name, func(t *testing.T) {
			_, err := decodeProof(id, b)
			var corrupt *CorruptRecordError
			require.ErrorAs(t, err, &corrupt)
			require.Equal(t, id, corrupt.ID)
			require.ErrorContains(t, err, "proof")
		})
	}
}

// FuzzDecodeRecord checks that decoding never panics, fails only with a *CorruptRecordError,
// and that whatever decodes re-encodes to a value that decodes to an equal record. Each input
// is tried as a whole stored value and, since random bytes almost never carry a valid checksum,
// also with a valid checksum appended, so that the parser behind the checksum gets fuzzed too.
func FuzzDecodeRecord(f *testing.F) {
	valid, err := encodeRecord(fullRecord())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-crcLen])
	f.Add([]byte{recordV1})
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeRecord(t, data)
		summed := binary.BigEndian.AppendUint32(bytes.Clone(data), crc32.Checksum(data, castagnoli))
		checkDecodeRecord(t, summed)
	})
}

func checkDecodeRecord(t *testing.T, data []byte) {
	rec, err := decodeRecord(paas.TaskID{}, data)
	if err != nil {
		if !errors.As(err, new(*CorruptRecordError)) {
			t.Fatalf("decode failed with %T, not *CorruptRecordError: %v", err, err)
		}
		return
	}
	enc, err := encodeRecord(rec)
	if err != nil {
		t.Fatalf("a decoded record does not encode: %v\n%#v", err, rec)
	}
	again, err := decodeRecord(rec.ID, enc)
	if err != nil {
		t.Fatalf("a re-encoded record does not decode: %v\n%#v", err, rec)
	}
	if !reflect.DeepEqual(rec, again) {
		t.Fatalf("round trip changed the record:\nfirst  %#v\nsecond %#v", rec, again)
	}
	if enc2, _ := encodeRecord(again); !bytes.Equal(enc, enc2) {
		t.Fatalf("encoding is not stable:\n%x\n%x", enc, enc2)
	}
	if _, err := decodeRecord(paas.NewTaskID(), data); err == nil {
		t.Fatalf("a record decoded under another task's key")
	}
}

// FuzzDecodeProof is FuzzDecodeRecord for proofs.
func FuzzDecodeProof(f *testing.F) {
	f.Add(encodeProof(handler.Proof{Backend: paas.BackendSP1, Receipt: []byte("r"), PublicValues: []byte("55")}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		summed := binary.BigEndian.AppendUint32(bytes.Clone(data), crc32.Checksum(data, castagnoli))
		for _, b := range [][]byte{data, summed} {
			p, err := decodeProof(paas.NewTaskID(), b)
			if err != nil {
				if !errors.As(err, new(*CorruptRecordError)) {
					t.Fatalf("decode failed with %T, not *CorruptRecordError: %v", err, err)
				}
				continue
			}
			again, err := decodeProof(paas.NewTaskID(), encodeProof(p))
			if err != nil || !reflect.DeepEqual(p, again) {
				t.Fatalf("round trip: %v\nfirst  %#v\nsecond %#v", err, p, again)
			}
		}
	})
}

// TestDecodeGoldenV1 decodes a version 1 record written when the format was made, kept in the
// fuzz seed corpus. Files written by older releases must stay readable: if this fails, the
// change broke them, and needs a new version number instead.
func TestDecodeGoldenV1(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzDecodeRecord", "valid_v1"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	require.Len(t, lines, 2)
	require.Equal(t, "go test fuzz v1", lines[0])
	quoted, ok := strings.CutPrefix(lines[1], "[]byte(")
	require.True(t, ok)
	quoted, ok = strings.CutSuffix(quoted, ")")
	require.True(t, ok)
	b, err := strconv.Unquote(quoted)
	require.NoError(t, err)

	id, err := paas.ParseTaskID("9c7e5f0e-8a43-4c1f-9d0c-2b1f4a0c5e21")
	require.NoError(t, err)
	at := time.Date(2031, time.March, 4, 5, 6, 7, 891_234_000, time.UTC)
	want := paas.TaskRecord{
		ID: id, Seq: 42, Key: paas.KeyOf("fib", []byte(`{"n":10}`), paas.BackendSP1),
		RoutingKey: "fib", Backend: paas.BackendSP1, Program: []byte(`{"n":10}`), Weight: 2,
		State: paas.Retrying, Attempts: 1, LastError: "backend busy",
		NextAttemptAt: at.Add(time.Minute), CreatedAt: at, UpdatedAt: at.Add(time.Second),
	}
	got, err := decodeRecord(id, []byte(b))
	require.NoError(t, err)
	require.Equal(t, want, got)
	enc, err := encodeRecord(want)
	require.NoError(t, err)
	require.Equal(t, []byte(b), enc, "version 1 must keep encoding the same bytes")
}
