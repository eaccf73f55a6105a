package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/zkpaas/paas"
)

// scanIndex calls fn for every entry of the index, in Seq order, and returns the first error of
// fn. It fails with a *CorruptRecordError at a damaged entry, and if the entries are not those
// of the Seqs from 1 to the last given, but for exactly as many as Prune counts (see the
// bucket comment). It cannot tell which Seqs Prune left without an entry, so where there are
// gaps it cannot name the Seq of a lost entry, only that there is one.
func scanIndex(b buckets, fn func(e indexEntry) error) error {
	last, pruned := b.tasks.Sequence(), b.index.Sequence()
	if pruned > last {
		return &CorruptRecordError{Err: fmt.Errorf("the index counts %d entries pruned, more than the %d seqs given", pruned, last)}
	}
	// seen counts the entries read so far, and prev is the Seq of the last of them. Every Seq
	// below an entry that has none was pruned, or its entry is lost.
	var seen, prev uint64
	c := b.index.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		e, err := decodeIndexEntry(k, v)
		if err != nil {
			return err
		}
		switch {
		case e.seq > last:
			return &CorruptRecordError{ID: e.id, Err: fmt.Errorf("index entry at seq %d, beyond the last seq given, %d", e.seq, last)}
		case e.seq == 0:
			return &CorruptRecordError{ID: e.id, Err: fmt.Errorf("index entry at seq %d, which is never given", e.seq)}
		}
		// Keys come in order, so the seen entries are all below e.seq.
		if gaps := e.seq - 1 - seen; gaps > pruned {
			return lostEntry(prev, e.seq-1, last, gaps, pruned)
		}
		if err := fn(e); err != nil {
			return err
		}
		seen++
		prev = e.seq
	}
	switch gaps := last - seen; {
	case gaps > pruned:
		return lostEntry(prev, last, last, gaps, pruned)
	case gaps < pruned:
		return &CorruptRecordError{Err: fmt.Errorf(
			"the index counts %d entries pruned, but only %d of the %d seqs given lack an entry", pruned, gaps, last)}
	}
	return nil
}

// lostEntry reports that gaps of the Seqs up to upTo lack an index entry, more than the pruned
// ones; if none was pruned, it names the first of them, the one after prev. last is the last
// Seq given.
func lostEntry(prev, upTo, last, gaps, pruned uint64) error {
	if pruned == 0 {
		return &CorruptRecordError{Err: fmt.Errorf("no index entry at seq %d, though seqs up to %d were given", prev+1, last)}
	}
	return &CorruptRecordError{Err: fmt.Errorf(
		"index entries lost: %d of the seqs up to %d lack an entry, but only %d were pruned", gaps, upTo, pruned)}
}

// entryAgrees checks that the index entry e says of its task what rec, the task's record, does.
func entryAgrees(e indexEntry, rec *paas.TaskRecord) error {
	if rec.ID == e.id && rec.Seq == e.seq && rec.State.Final() == e.finished && string(rec.Key) == string(e.key) {
		return nil
	}
	flag := "unfinished"
	if e.finished {
		flag = "finished"
	}
	return &CorruptRecordError{ID: rec.ID, Err: fmt.Errorf(
		"index entry at seq %d (task %s, %s, key %q) disagrees with the record (seq %d, %s, key %q)",
		e.seq, e.id, flag, e.key, rec.Seq, rec.State, rec.Key)}
}

// seqKey returns the key of the index entry of Seq seq.
func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

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
