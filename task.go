package paas

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// TaskID identifies a task. It is a time-ordered (version 7) UUID, made when the task is first
// submitted; submitting the same program to the same backend again returns the same TaskID.
type TaskID uuid.UUID

// NewTaskID returns a new TaskID: a version 7 UUID, whose first bits are the time, so that ids
// made later sort after earlier ones (the stores append new tasks at the end of their files).
func NewTaskID() TaskID { return TaskID(uuid.Must(uuid.NewV7())) }

// ParseTaskID parses the canonical textual form of a TaskID, as returned by TaskID.String.
func ParseTaskID(s string) (TaskID, error) {
	u, err := uuid.Parse(s)
	if err != nil {
		return TaskID{}, fmt.Errorf("paas: parse task id %q: %w", s, err)
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
//	Submit ─→ Blocked ─ dependencies done, or input due ─→ Pending
//	   └────────────────────────────────────────────────→ Pending ──→ InProgress ──→ Completed
//	                                                        ▲            │  │  │
//	                                                        └─ Retrying ←┘  │  └──→ Failed
//	                                                          (when due)    └─ input not ready ─→ Blocked
//
// Any unfinished task can be Cancelled; a Blocked task whose dependency fails, or whose input
// stays not ready too long, is Failed; a running task interrupted by Stop goes back to Pending.
// Completed, Failed and Cancelled are final: such a task never runs again on its own, though an
// operator may Retry a Failed or Cancelled one.
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
	// Blocked: waiting for its dependencies to complete, or for its input to be ready (then
	// TaskStatus.NextAttemptAt says when it is looked at again).
	Blocked
)

// States lists every TaskState in lifecycle order.
var States = []TaskState{Blocked, Pending, InProgress, Retrying, Completed, Failed, Cancelled}

var stateNames = map[TaskState]string{
	Blocked:    "blocked",
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
	Blocked:    {Pending, Failed, Cancelled},
	Pending:    {InProgress, Cancelled},
	InProgress: {Completed, Failed, Retrying, Cancelled, Pending, Blocked},
	// A retrying task is picked up again as Pending when due; a task found InProgress after a
	// crash and out of budget goes straight to Failed.
	Retrying: {Pending, Cancelled, Failed},
	// Only by an operator's Retry.
	Failed:    {Pending, Blocked},
	Cancelled: {Pending, Blocked},
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
	// Attempt counts every attempt, from 1 for the first: each start of a handler for the
	// task, whatever the last one's outcome (a transient error, input not ready, a Restart, an
	// interruption), since it was submitted or last put back by an operator's Retry.
	Attempt int
	// DependsOn lists the tasks that completed before this one could start; a handler reads
	// their proofs from its proof store.
	DependsOn []TaskID
	// Checkpoint is the last checkpoint saved for this task by SaveCheckpoint, in this attempt
	// or an earlier one, or nil. It is cleared when an attempt fails with Restart.
	Checkpoint []byte
	// SaveCheckpoint persists a small checkpoint for the task, such as the id of a proof
	// request on a remote network, so that the next attempt, even after a restart, can pick the
	// request up instead of paying for a new one. It returns once the checkpoint is stored. The
	// service sets it; tests of a handler may set their own.
	SaveCheckpoint func(ctx context.Context, checkpoint []byte) error
}

type taskKey struct{}

// ContextWithTask returns a copy of ctx that carries task. The service gives every handler such
// a context, so that code deep inside a handler (an InputFetcher, a Host) can learn which task
// it works for.
func ContextWithTask(ctx context.Context, task Task) context.Context {
	return context.WithValue(ctx, taskKey{}, task)
}

// TaskFromContext returns the task carried by ctx, if any.
func TaskFromContext(ctx context.Context) (Task, bool) {
	t, ok := ctx.Value(taskKey{}).(Task)
	return t, ok
}

// TaskStatus is a snapshot of a task, as returned by ProverHandle.Status.
type TaskStatus struct {
	ID         TaskID
	RoutingKey RoutingKey
	Backend    Backend
	State      TaskState
	Priority   int
	DependsOn  []TaskID
	// Attempts is how many attempts have counted against the retry budget, including one in
	// progress. Attempts that found the input not ready do not count.
	Attempts int
	// Restarts is how many attempts failed with Restart, against Retry.MaxRestarts.
	Restarts int
	// Interruptions is how many attempts were cut short by the end of the process that ran
	// them, against Retry.MaxInterruptions.
	Interruptions int
	// Runs is how many attempts have started in all, whatever their outcome (Task.Attempt).
	Runs int
	// LastError is the error of the last failed attempt, or empty.
	LastError string
	// NextAttemptAt is when a Retrying task, or a task Blocked on its input, is looked at
	// again; zero otherwise.
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
	// FailedDependency is the dependency whose failure failed this task, or zero.
	FailedDependency TaskID
	// FailedDependencyState is the final state of FailedDependency, or zero if not known.
	FailedDependencyState TaskState
}

// Err returns nil for a Completed task and a *TaskError describing the outcome otherwise. For
// a task failed by one of its dependencies, errors.As finds a *DependencyError in it.
func (r TaskResult) Err() error {
	if r.State == Completed {
		return nil
	}
	err := &TaskError{ID: r.ID, State: r.State, Message: r.Error}
	if !r.FailedDependency.IsZero() {
		err.Err = &DependencyError{ID: r.FailedDependency, State: r.FailedDependencyState}
	}
	return err
}

// StatusSummary counts the tasks of a service by state. Unfinished counts (Blocked, Pending,
// InProgress, Retrying) cover every unfinished task that the service runs. The final counts
// (Completed, Failed, Cancelled) cover the tasks that reached a final state since the service
// started and are still in it: each task counts once, under its current state, so a Failed
// task that an operator retries leaves the Failed count, and joins Completed if it then
// completes. Tasks that finished before the start are in the store, not in these counts. To
// count each task once, the service remembers the ids of those it counts, a few dozen bytes
// each.
type StatusSummary struct {
	Blocked    int
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
	case Blocked:
		return s.Blocked
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
