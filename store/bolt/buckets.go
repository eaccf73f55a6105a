package bolt

import (
	"errors"

	"go.etcd.io/bbolt"
)

// Buckets of the file. Task ids are stored as their 16 bytes; they are time-ordered (UUIDv7),
// so new tasks are appended at the end of the tasks bucket rather than scattered through it.
//
// The index holds one small entry for every task, under its Seq: whether the task is finished,
// its id and its TaskKey (see encodeIndexEntry). An insert appends one entry, at the end of the
// bucket; an update rewrites it only when its task moves between unfinished and final, and
// leaves it alone otherwise; Prune deletes it with its task. An insert takes its Seq in the
// transaction that writes the entry, and Prune adds the entries it deletes to the sequence of
// the index bucket (otherwise unused) in the transaction that deletes them, so the entries
// are always those of Seq 1 to the sequence of the tasks bucket, but for as many as the
// sequence of the index bucket counts. Open and Unfinished check it (see scanIndex), so that a
// lost entry is noticed even where Prune has left gaps: a lost entry leaves one gap more than
// Prune counted.
//
// The count of pruned entries is what keeps that check sound with gaps: without it, a gap
// could be a pruned task or a lost entry, and a lost entry of an unfinished task would lose
// the task. It cannot tell which Seq lost its entry, only that one did, and it cannot catch a
// lost entry and a wrong count that cancel out; only a bug of the store, not a flipped bit,
// which the checksums catch, could write such a count.
//
// The index serves three readers, which each scan it in Seq order:
//   - Open, which rebuilds from it the map from TaskKey to id that the Store keeps in memory.
//     There is no bucket from key to id: keys are digests, so every insert would dirty a
//     different page of such a bucket, and a batch of 64 inserts would write 64 pages. The file
//     lock makes the Store the file's only writer, so the map cannot go stale.
//   - Unfinished, which reads the records of the entries not flagged finished and skips the
//     others. A separate bucket of the unfinished tasks alone would spare it the finished
//     entries, but would cost every insert a third Put. One bucket costs one Put less per
//     insert, in exchange for a scan of small entries (about a hundred bytes a task) at start,
//     which Open does anyway; it also trusts the flag of a finished entry, since checking it
//     would take reading every finished record.
//   - Prune, which skips the entries flagged unfinished without reading their records, and
//     reads the record of each entry flagged finished for its UpdatedAt, checking it against
//     the entry before it deletes anything. UpdatedAt is not kept in the entry: it changes with
//     every update, so the entry would have to be rewritten by every update, not only by the
//     few that finish a task, and Prune, which deletes for good, would then act on the entry
//     alone. Reading the finished records costs Prune time proportional to the finished tasks
//     kept, which Prune itself keeps bounded.
var (
	bucketTasks  = []byte("tasks")  // id → record; its sequence is the last Seq given
	bucketIndex  = []byte("index")  // Seq, 8 bytes big-endian → index entry, for every task; its sequence counts the entries pruned
	bucketProofs = []byte("proofs") // id → proof; its sequence is a digest of its keys (see trackedDigest)
	// dependency id ‖ dependent id → nothing, for every unfinished task and each of its
	// dependencies, so that Prune keeps the tasks that unfinished tasks depend on without
	// reading the records of the unfinished tasks.
	bucketDependents = []byte("dependents")
)

type buckets struct {
	tasks, index, proofs, dependents *bbolt.Bucket
}

func openBuckets(tx *bbolt.Tx) (buckets, error) {
	b := buckets{
		tasks:      tx.Bucket(bucketTasks),
		index:      tx.Bucket(bucketIndex),
		proofs:     tx.Bucket(bucketProofs),
		dependents: tx.Bucket(bucketDependents),
	}
	if b.tasks == nil || b.index == nil || b.proofs == nil || b.dependents == nil {
		// Open creates them all, so the file has been tampered with.
		return b, abort(errors.New("bolt: a bucket of the store is missing"))
	}
	// New entries go at the end of these buckets (Seq and time-ordered ids grow), so full
	// pages are never split again: fill them up rather than leave bbolt's default half.
	b.tasks.FillPercent = appendFill
	b.index.FillPercent = appendFill
	return b, nil
}

// appendFill is the fill of pages in buckets written in key order. Records of the tasks bucket
// are rewritten in place as tasks move and may grow a little (a longer error), so leave some room.
const appendFill = 0.9
