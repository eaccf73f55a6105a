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
	Seq        uint64
	Key        TaskKey
	RoutingKey RoutingKey
	Backend    Backend
	Program    []byte // encoded by the service's Codec
	Weight     int64
	State      TaskState
	// Attempts is how many attempts have started. It is never reset, so the retry budget
	// survives every transition and every restart.
	Attempts      int
	LastError     string
	NextAttemptAt time.Time // when a Retrying task is due; zero otherwise
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Status returns the public view of the record.
func (r TaskRecord) Status() TaskStatus {
	return TaskStatus{
		ID:            r.ID,
		RoutingKey:    r.RoutingKey,
		Backend:       r.Backend,
		State:         r.State,
		Attempts:      r.Attempts,
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
	}
	return res
}

// Clone returns a copy of r that shares no memory with it.
func (r TaskRecord) Clone() TaskRecord {
	if r.Program != nil {
		r.Program = append([]byte(nil), r.Program...)
	}
	return r
}

// TaskStore persists tasks. Implementations must be safe for concurrent use; each method
// returns only once its effect is durable (as durable as the store promises to be).
// The conformance suite in store/storetest states the contract as tests.
type TaskStore interface {
	// Insert stores rec, a new Pending task, and returns it with Seq assigned. If a task with
	// rec.Key already exists, whatever its state, Insert stores nothing and returns the existing
	// record; callers tell the two apart by comparing IDs.
	Insert(ctx context.Context, rec TaskRecord) (TaskRecord, error)
	// Update replaces the stored record with the same ID. It returns an error wrapping
	// ErrTaskNotFound if there is none. ID, Seq, Key, and CreatedAt never change.
	Update(ctx context.Context, rec TaskRecord) error
	// Get returns the record with the given id, or an error wrapping ErrTaskNotFound.
	Get(ctx context.Context, id TaskID) (TaskRecord, error)
	// Unfinished returns every record not in a final state, in Seq order.
	Unfinished(ctx context.Context) ([]TaskRecord, error)
}
