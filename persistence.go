package paas

import (
	"context"
	"time"
)

// TaskRecord is what a TaskStore keeps of a task. The store is the source of truth: the service
// holds a cache of the unfinished records and writes every change through the store before it
// makes the change visible.
type TaskRecord struct {
	ID TaskID
	// Seq orders tasks by submission; the store assigns it on Insert, increasing.
	Seq uint64
	// Version fences writes made from a record read earlier. The writer numbers its writes of
	// a task: 1 for the insert, one more for each update. A store keeps the Version it is
	// given, and applies an update whose Version is not zero only if the stored record's
	// Version is one less, so a write decided on a record that has changed since it was read
	// fails with ErrConflict instead of overwriting the change. Zero means an unfenced write.
	Version    uint64
	Key        TaskKey
	RoutingKey RoutingKey
	Backend    Backend
	Program    []byte // encoded by the service's Codec
	Weight     int64
	Priority   int      // higher runs first within a backend
	DependsOn  []TaskID // tasks that must complete before this one runs
	// Timeout bounds each attempt; zero means the backend's default (Config.Timeouts), unless
	// NoTimeout is set.
	Timeout time.Duration
	// NoTimeout says that the task's attempts have no timeout, whatever its backend's default
	// (the task was submitted with Timeout(0)). Timeout is then zero.
	NoTimeout bool
	State     TaskState
	// Attempts is how many attempts have counted against the retry budget. It is reset only by
	// an operator's Retry, so the budget survives every transition and every restart.
	Attempts int
	// Restarts is how many attempts failed with Restart, against Retry.MaxRestarts.
	Restarts int
	// Interruptions is how many attempts were cut short by the end of the process that ran
	// them (a crash, or a handler abandoned by Stop), against Retry.MaxInterruptions.
	Interruptions int
	// Runs is how many times a handler has been started for the task, whatever the outcome:
	// every attempt counts, including those that found the input not ready, failed with
	// Restart or were interrupted. It is Task.Attempt of the latest attempt.
	Runs int
	// Checkpoint is the handler's last saved checkpoint, or nil.
	Checkpoint []byte
	LastError  string
	// FailedDependency is the dependency whose failure failed this task, or zero.
	FailedDependency TaskID
	// FailedDependencyState is the final state of FailedDependency (Failed or Cancelled), or
	// zero if it is not known.
	FailedDependencyState TaskState
	// NextAttemptAt is when a Retrying task, or one Blocked on its input, is due; zero otherwise.
	NextAttemptAt time.Time
	// WaitingSince is when the task first found its input not ready; zero if it never did.
	WaitingSince time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Status returns the public view of the record.
func (r TaskRecord) Status() TaskStatus {
	return TaskStatus{
		ID:            r.ID,
		RoutingKey:    r.RoutingKey,
		Backend:       r.Backend,
		State:         r.State,
		Priority:      r.Priority,
		DependsOn:     append([]TaskID(nil), r.DependsOn...),
		Attempts:      r.Attempts,
		Restarts:      r.Restarts,
		Interruptions: r.Interruptions,
		Runs:          r.Runs,
		LastError:     r.LastError,
		NextAttemptAt: r.NextAttemptAt,
		CreatedAt:     r.CreatedAt,
		UpdatedAt:     r.UpdatedAt,
	}
}

// Result returns the outcome of a record in a final state.
func (r TaskRecord) Result() TaskResult {
	res := TaskResult{ID: r.ID, State: r.State, Attempts: r.Attempts}
	if r.State == Failed {
		res.Error = r.LastError
		res.FailedDependency = r.FailedDependency
		res.FailedDependencyState = r.FailedDependencyState
	}
	return res
}

// Clone returns a copy of r that shares no memory with it.
func (r TaskRecord) Clone() TaskRecord {
	if r.Program != nil {
		r.Program = append([]byte(nil), r.Program...)
	}
	if r.DependsOn != nil {
		r.DependsOn = append([]TaskID(nil), r.DependsOn...)
	}
	if r.Checkpoint != nil {
		r.Checkpoint = append([]byte(nil), r.Checkpoint...)
	}
	return r
}

// TaskStore persists tasks. Implementations must be safe for concurrent use; each method
// returns only once its effect is durable (as durable as the store promises to be).
// The conformance suite in store/storetest states the contract as tests.
type TaskStore interface {
	// Insert stores rec, a new task, and returns it with Seq assigned. A new task is Pending,
	// Blocked on its dependencies, or InProgress with its first attempt begun (one that could
	// start at once). If a task with
	// rec.Key already exists, whatever its state, Insert stores nothing and returns the existing
	// record; callers tell the two apart by comparing IDs.
	Insert(ctx context.Context, rec TaskRecord) (TaskRecord, error)
	// Update replaces the stored record with the same ID. It returns an error wrapping
	// ErrTaskNotFound if there is none. ID, Seq, Key, and CreatedAt never change. If
	// rec.Version is not zero and the stored record's Version is not rec.Version-1, it changes
	// nothing and returns an error wrapping ErrConflict (see TaskRecord.Version).
	Update(ctx context.Context, rec TaskRecord) error
	// Get returns the record with the given id, or an error wrapping ErrTaskNotFound.
	Get(ctx context.Context, id TaskID) (TaskRecord, error)
	// GetByKey returns the record of the task with the given key, whatever its state, or an
	// error wrapping ErrTaskNotFound.
	GetByKey(ctx context.Context, key TaskKey) (TaskRecord, error)
	// Unfinished returns every record not in a final state, in Seq order.
	Unfinished(ctx context.Context) ([]TaskRecord, error)
	// Prune deletes the tasks in a final state (Completed, Failed, Cancelled) last updated
	// before the given time, and never an unfinished one, nor one that an unfinished task
	// depends on (it is kept until its dependents have finished too). It returns how many it
	// deleted. A pruned task is forgotten: submitting its program again makes a new task.
	Prune(ctx context.Context, before time.Time) (int, error)
}

// Write is one change for a store to persist: the insert of a new task or the update of one.
type Write struct {
	Insert bool
	Record TaskRecord
}

// WriteResult is a store's answer to one Write. It is small, a batch's answers being made
// for every write: what an insert made is read from the store if needed.
type WriteResult struct {
	// ID and Seq are, for an insert, those of the task the store holds for the key
	// afterwards: the new one, with the Seq assigned, or the one that already existed (see
	// TaskStore.Insert). They are zero for an update, and for an insert that failed.
	ID  TaskID
	Seq uint64
	Err error
}

// InsertResult is the WriteResult of an insert that stored rec, or that failed with err: the
// answer of TaskStore.Insert, as a batch gives it.
func InsertResult(rec TaskRecord, err error) WriteResult {
	if err != nil {
		return WriteResult{Err: err}
	}
	return WriteResult{ID: rec.ID, Seq: rec.Seq}
}

// BatchStore is a TaskStore that commits many writes in one transaction, paying for one sync to
// disk instead of one per write. The service gives it, as one batch, every write that piled up
// while the previous batch was being committed (group commit), and answers the callers of a
// batch only once WriteBatch has returned.
type BatchStore interface {
	TaskStore
	// WriteBatch applies writes in order, as Insert and Update would one by one, in a single
	// transaction, and returns one result per write. A write that fails on its own (the update
	// of an unknown task) fails alone and the others still apply; if the transaction fails,
	// every write fails with its error and none is applied. Nothing in the batch is durable
	// before WriteBatch returns, and all of it is after.
	WriteBatch(ctx context.Context, writes []Write) []WriteResult
}

// Proof is what a prover produces for one program (a handler.Host, say), and what a
// ProofStorer stores under the task's id.
type Proof struct {
	// Backend is the backend that produced the proof.
	Backend Backend
	// Receipt is the backend's proof bytes. It is empty for BackendNative, which runs the
	// program without proving it.
	Receipt []byte
	// PublicValues is the program's public output, committed to by the proof.
	PublicValues []byte
}

// ProofStorer stores proofs. The service runs tasks at least once, so StoreProof may be called
// again for a task whose proof is already stored, and must then succeed.
type ProofStorer interface {
	StoreProof(ctx context.Context, id TaskID, proof Proof) error
}

// ProofStorerFunc adapts a function to a ProofStorer.
type ProofStorerFunc func(ctx context.Context, id TaskID, proof Proof) error

// StoreProof implements ProofStorer by calling f.
func (f ProofStorerFunc) StoreProof(ctx context.Context, id TaskID, proof Proof) error {
	return f(ctx, id, proof)
}

// ProofReader reads back stored proofs. The stores of package store keep proofs and are
// ProofReaders.
type ProofReader interface {
	Proof(ctx context.Context, id TaskID) (Proof, error)
}
