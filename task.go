package paas

import (
	"fmt"
	"time"

	"github.com/google/uuid"
)

// TaskID identifies a task. It is a random (version 4) UUID assigned when the task is first
// stored; submitting the same program to the same backend again returns the same TaskID.
type TaskID uuid.UUID

// NewTaskID returns a new random TaskID.
func NewTaskID() TaskID { return TaskID(uuid.Must(uuid.NewV7())) }

// ParseTaskID parses the canonical textual form of a TaskID, as returned by TaskID.String.
func ParseTaskID(s string) (TaskID, error) {
	u, err := uuid.Parse(s)
	if err != nil {
		return TaskID{}, fmt.Errorf("parse task id %q: %w", s, err)
	}
	return TaskID(u), nil
}

// String returns the canonical UUID form, e.g. "9c7e5f0e-8a43-4c1f-9d0c-2b1f4a0c5e21".
func (id TaskID) String() string { return uuid.UUID(id).String() }

// IsZero reports whether id is the zero TaskID, which never names a task.
func (id TaskID) IsZero() bool { return id == TaskID{} }

// MarshalText implements encoding.TextMarshaler.
func (id TaskID) MarshalText() ([]byte, error) { return uuid.UUID(id).MarshalText() }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *TaskID) UnmarshalText(b []byte) error { return (*uuid.UUID)(id).UnmarshalText(b) }

// TaskState is where a task is in its lifecycle.
//
//	          ┌──────────── Cancel ─────────────┐
//	          │                                 ▼
//	Submit → Pending ──→ InProgress ──→ Completed | Failed | Cancelled
//	          ▲            │    │
//	          │            │    └─ interrupted by Stop ─→ Pending (the attempt is not counted)
//	          │            ▼
//	          └─ due ── Retrying ── Cancel ─→ Cancelled
//
// Completed, Failed and Cancelled are final.
type TaskState uint8

const (
	// Pending: waiting for a worker of its backend.
	Pending TaskState = iota + 1
	// InProgress: a handler is proving it.
	InProgress
	// Retrying: the last attempt failed transiently; the next one is due at TaskStatus.NextAttemptAt.
	Retrying
	// Completed: the handler succeeded. Final.
	Completed
	// Failed: the handler failed permanently, panicked, or the retry budget ran out. Final.
	Failed
	// Cancelled: cancelled by the user. Final.
	Cancelled
)

// States lists every TaskState in lifecycle order.
var States = []TaskState{Pending, InProgress, Retrying, Completed, Failed, Cancelled}

var stateNames = map[TaskState]string{
	Pending:    "pending",
	InProgress: "in_progress",
	Retrying:   "retrying",
	Completed:  "completed",
	Failed:     "failed",
	Cancelled:  "cancelled",
}

// String returns the state's lower-case name, e.g. "in_progress".
func (s TaskState) String() string {
	if n, ok := stateNames[s]; ok {
		return n
	}
	return fmt.Sprintf("TaskState(%d)", uint8(s))
}

// Valid reports whether s is one of the defined states.
func (s TaskState) Valid() bool { _, ok := stateNames[s]; return ok }

// Final reports whether s is Completed, Failed or Cancelled: a task in a final state never runs again.
func (s TaskState) Final() bool { return s == Completed || s == Failed || s == Cancelled }

// transitions holds every legal move between states; anything else is a bug.
var transitions = map[TaskState][]TaskState{
	Pending:    {InProgress, Cancelled},
	InProgress: {Completed, Failed, Retrying, Cancelled, Pending},
	// A retrying task is picked up again as Pending when due; a task found InProgress after a
	// crash and out of budget goes straight to Failed.
	Retrying: {Pending, Cancelled, Failed},
}

// CanTransitionTo reports whether a task may move from s to next.
func (s TaskState) CanTransitionTo(next TaskState) bool {
	for _, to := range transitions[s] {
		if to == next {
			return true
		}
	}
	return false
}

// Task is what a ProofHandler is given to prove: the task's identity and its encoded program.
type Task struct {
	ID         TaskID
	RoutingKey RoutingKey
	Backend    Backend
	// Program is the program as encoded by the service's Codec at Submit. Decode it with the same Codec.
	Program []byte
	// Attempt counts from 1 for the first attempt.
	Attempt int
}

// TaskStatus is a snapshot of a task, as returned by ProverHandle.Status.
type TaskStatus struct {
	ID         TaskID
	RoutingKey RoutingKey
	Backend    Backend
	State      TaskState
	// Attempts is how many attempts have started, including one in progress.
	Attempts int
	// LastError is the error of the last failed attempt, or empty.
	LastError string
	// NextAttemptAt is when a Retrying task runs again; zero in other states.
	NextAttemptAt time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// TaskResult is the final outcome of a task, as returned by ProverHandle.Wait and Execute.
type TaskResult struct {
	ID       TaskID
	State    TaskState // Completed, Failed or Cancelled
	Attempts int
	// Error is the last error for a Failed task, empty otherwise.
	Error string
}

// Err returns nil for a Completed task and a *TaskError describing the outcome otherwise.
func (r TaskResult) Err() error {
	if r.State == Completed {
		return nil
	}
	return &TaskError{ID: r.ID, State: r.State, Message: r.Error}
}

// StatusSummary counts the tasks of a service by state. Unfinished counts (Pending, InProgress,
// Retrying) cover every unfinished task of the store the service runs on; the final counts cover
// the tasks that reached their final state since the service started.
type StatusSummary struct {
	Pending    int
	InProgress int
	Retrying   int
	Completed  int
	Failed     int
	Cancelled  int
}

// Count returns the count for state s.
func (s StatusSummary) Count(state TaskState) int {
	switch state {
	case Pending:
		return s.Pending
	case InProgress:
		return s.InProgress
	case Retrying:
		return s.Retrying
	case Completed:
		return s.Completed
	case Failed:
		return s.Failed
	case Cancelled:
		return s.Cancelled
	}
	return 0
}
