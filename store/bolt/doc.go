// Package bolt provides Store, a durable paas.TaskStore and paas.BatchStore that keeps tasks,
// and the proofs of a paas.ProofStorer, in one bbolt file (go.etcd.io/bbolt).
//
// # Guarantees
//
// Once a method that writes has returned without error, its write is on disk: every
// transaction is synced (fsync) before it commits, unless Options.NoSync is set, which is for
// tests only. A crash, of the process or of the machine, at any moment leaves the file as it was
// after the last commit: bbolt writes pages copy-on-write and switches to them atomically, so
// no write is ever half applied, and no acknowledged one is lost.
//
// WriteBatch commits a whole batch in one transaction and one sync, which is what makes group
// commit cheap: the service hands the store every write that piled up during the last sync.
//
// Every stored value carries a format version and a checksum. A value that cannot be read back
// (damaged on disk, written by a newer release) is reported as a *CorruptRecordError naming the
// task when it can, by Get, by Unfinished, by Prune, and by the writes that need it. Unfinished fails
// rather than leave out a task it cannot read, so that a damaged task is noticed instead of
// silently lost. Open fails the same way if an entry of the index that holds every task's key
// is damaged or missing, rather than forget a key and let its program become a second task.
//
// # Damaged files
//
// bbolt trusts its file: over a truncated file, a zeroed page or a flipped byte in a page
// header it reads past the end of its memory map, which kills the process with SIGBUS or
// SIGSEGV, or panics, and a flipped byte in a key makes a lookup miss a stored value. So Open
// checks the structure of the whole file with plain reads before bbolt maps it: both meta
// pages, the file's length, every page in use reachable once and not free, page types,
// element bounds and key order, the store's buckets, a digest of the proofs' keys, and that
// no record sits under a key that neither its index entry nor the record itself names. The
// check reads every page but the overflow pages of large values: on a file of 100,000 tasks
// and 90,000 proofs, some 130 MiB, it takes about 80ms (BenchmarkCheckStructure100k). Reads
// run under debug.SetPanicOnFault, so that damage done to the file while it is open also
// gives an error. Damage is reported as a *DamagedFileError naming the file (and the task,
// when known); a value that fails its checksum is also a *CorruptRecordError, as before.
//
// One meta page invalid is reported as damage too, though bbolt would use the other: a crash
// of the machine in the middle of a commit can leave it so, but so can damage, and then the
// last commit would be lost without a word. An empty file is a new store to Open (bbolt
// writes nothing before its first pages), so a file truncated to nothing reads as empty.
//
// What an operator does with a damaged file:
//
//  1. Stop the node: a Store holds the file's lock, and nothing else can check it meanwhile.
//  2. Run the checker, which lists what is damaged and never writes the file:
//     go run github.com/zkpaas/paas/store/bolt/cmd/boltcheck /var/lib/prover/tasks.db
//     (bolt.Check from Go). It exits 0 if the file is sound, 1 if it is damaged.
//  3. Restore the file from a backup (a copy taken while the node was stopped), and check the
//     copy before starting the node on it. Tasks submitted since the backup are lost; their
//     submitters must submit them again.
//  4. Without a backup, keep the damaged file for investigation, and start the node on a new
//     file. This package has no repair tool: bbolt's own "bbolt compact" copies what bbolt can
//     read, but it reads through the same memory map and can crash, or silently leave out
//     what a damaged page hid; a compacted copy that boltcheck finds sound holds no more than
//     what survived, and tasks the damage hid from it are lost.
//
// The file is locked while a Store has it open: a second Open, by another process or by the
// same one, fails after Options.LockTimeout with an error wrapping ErrLocked, so that two nodes
// started on one file fail fast instead of corrupting it or hanging.
//
// # Use
//
// Open the store once per process, give it to the service as its TaskStore and to
// handler.RemoteProofHandler as its Storer, and Close it after the service has stopped:
//
//	store, err := bolt.Open("/var/lib/prover/tasks.db", nil)
//	if err != nil {
//		return err // errors.Is(err, bolt.ErrLocked): another node runs on this file
//	}
//	defer store.Close()
//
// The file's directory must exist. After Close, every method fails with an error wrapping
// paas.ErrStoreClosed.
//
// The file keeps, besides the records, an index with a small entry for every task, in Seq
// order: whether the task is finished, its id and its key. An insert writes the record and
// the entry; an update writes the record, and the entry too only when the task finishes (or
// is made unfinished again). Open scans the index to rebuild the map from key to task in
// memory, and Unfinished scans it to read the records of the unfinished tasks only: a restart
// reads every task's entry, about a hundred bytes, but the record, with its program, of no
// finished task.
//
// # Pruning
//
// Finished tasks are kept until Prune deletes them: it deletes the record, the index entry and
// the key of every task in a final state last updated before a given time, so that the file
// does not grow forever. A pruned task is forgotten: its program submitted again is a new task,
// proved again. Prune never deletes an unfinished task, and reads the record of each finished
// one to be sure of it before deleting it. It works in transactions of a bounded size, so that
// a large prune does not hold up the service's writes. It keeps the proofs, which are the
// product: delete those that are no longer wanted with DeleteProof.
//
// The index bucket counts the entries Prune deleted, so that Open still tells the gaps Prune
// leaves in the Seqs of the index from an entry that was lost.
//
// # Where things are
//
// bolt.go holds Store and Options; open.go Open; buckets.go the buckets of the file and why
// they are so; tasks.go the TaskStore and BatchStore methods; index.go the index; prune.go
// Prune; proofs.go the proofs; dependents.go the dependents bucket; record.go and encode.go
// the stored formats; damage.go, structure.go, tree.go and digest.go the checks that turn
// a damaged file into a *DamagedFileError; check.go Check, which cmd/boltcheck runs.
package bolt
