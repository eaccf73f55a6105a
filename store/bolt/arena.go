package bolt

import (
	"bytes"
	"strings"

	"github.com/zkpaas/paas"
)

// arena copies the variable-length fields of the records of one load out of bbolt's memory,
// which is valid only in the transaction, into blocks shared by many records: a load of a
// million tasks then makes a few thousand allocations instead of several per task, and leaves
// the garbage collector a few thousand objects to track instead of millions.
//
// A field shares its block with its neighbours in the load, so the block is freed only once
// every record of it is: a record kept alone keeps up to arenaBlock bytes of each kind. Tasks
// of a load tend to finish in Seq order, so a block's records are mostly dropped together.
// Byte slices are cut with their capacity at their length, so that appending to one, say to
// a Program, copies it rather than overwriting its neighbour.
//
// The zero arena is ready for use. A nil *arena allocates every field on its own: the
// records read one at a time use it.
type arena struct {
	free []byte          // the unused end of the current block of byte fields
	ids  []paas.TaskID   // the unused end of the current block of DependsOn lists
	strs strings.Builder // the current block of string fields, cut out of its String()
	// interned holds the strings of fields that few values fill, routing keys and backends,
	// so that their records share one copy of each.
	interned map[string]string
}

const (
	// arenaBlock is the size of a block, in bytes, for each kind of field.
	arenaBlock = 64 << 10
	// arenaLarge is the size from which a field gets an allocation of its own, so that a large
	// one does not leave most of a block unused.
	arenaLarge = arenaBlock / 8
	// maxInterned bounds the strings an arena interns: a load whose routing keys are all
	// different would otherwise grow the map by a string per task.
	maxInterned = 256
)

// bytes returns a copy of v, nil if v is empty.
func (a *arena) bytes(v []byte) []byte {
	switch {
	case len(v) == 0:
		return nil
	case a == nil || len(v) >= arenaLarge:
		return bytes.Clone(v)
	}
	if len(v) > len(a.free) {
		a.free = make([]byte, arenaBlock)
	}
	out := a.free[:len(v):len(v)]
	copy(out, v)
	a.free = a.free[len(v):]
	return out
}

// string returns v as a string.
func (a *arena) string(v []byte) string {
	switch {
	case len(v) == 0:
		return ""
	case a == nil || len(v) >= arenaLarge:
		return string(v)
	}
	if a.strs.Cap()-a.strs.Len() < len(v) {
		// Strings cut from the block before keep it alive; the builder starts a new one.
		a.strs.Reset()
		a.strs.Grow(arenaBlock)
	}
	start := a.strs.Len()
	a.strs.Write(v)
	// A Builder only appends, and copies its bytes when it grows, so the bytes under a string
	// it has returned never change: a cut of its String() is a string of its own.
	return a.strs.String()[start:]
}

// intern returns v as a string, the same string every time for the same bytes.
func (a *arena) intern(v []byte) string {
	if a == nil {
		return string(v)
	}
	if s, ok := a.interned[string(v)]; ok {
		return s
	}
	s := a.string(v)
	if len(a.interned) < maxInterned {
		if a.interned == nil {
			a.interned = make(map[string]string)
		}
		a.interned[s] = s
	}
	return s
}

// taskIDs returns room for n task ids, or nil if n is zero.
func (a *arena) taskIDs(n int) []paas.TaskID {
	const idsLarge = arenaLarge / len(paas.TaskID{})
	switch {
	case n == 0:
		return nil
	case a == nil || n >= idsLarge:
		return make([]paas.TaskID, n)
	}
	if n > len(a.ids) {
		a.ids = make([]paas.TaskID, arenaBlock/len(paas.TaskID{}))
	}
	out := a.ids[:n:n]
	a.ids = a.ids[n:]
	return out
}
