// Package bolt provides Store, a durable paas.TaskStore and paas.BatchStore that keeps tasks,
// and the proofs of a handler.ProofStorer, in one bbolt file (go.etcd.io/bbolt).
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
// task, by Get, by Unfinished, and by the writes that need it. Unfinished fails rather than leave
// out a task it cannot read, so that a damaged task is noticed instead of silently lost.
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
// Unfinished reads an index of the unfinished tasks in Seq order, so a restart costs time in
// proportion to the work left, not to the history the file holds. Finished tasks and proofs
// are kept until the file is deleted; the store has no expiry.
package bolt
