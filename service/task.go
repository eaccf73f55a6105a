package service

import (
	"context"
	"time"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/internal/attempt"
)

type task struct {
	rec     paas.TaskRecord // as last committed
	writing bool            // a write is in flight
	queued  bool            // in its backend's queue
	gone    bool            // not inserted (a duplicate, an error) or dropped: ignore it

	run        context.Context         // the handler's context, set while it runs
	cancel     context.CancelCauseFunc // cancels run
	deadline   time.Time               // when run times out; zero if never
	done       *attempt.Verdict        // the handler's outcome, waiting for a write to commit
	cancelReq  bool                    // the user asked to cancel
	cancelAcks []chan<- error          // Cancel calls answered when the task is final
	cancelled  bool                    // a Cancel has been answered nil: later ones come second
	saveAck    chan<- error            // the SaveCheckpoint call answered at commit
	retryAck   chan<- error            // the Retry call answered when its write commits
	// Retries that came while that write was in flight: answered at its commit, that the task
	// is not finished, or, if it did not take, to try again.
	laterRetries []chan<- error
	counted      bool // revived from a final state already in counts

	deps           int            // dependencies not yet Completed
	failedDep      paas.TaskID    // a dependency that ended Failed or Cancelled
	failedDepState paas.TaskState // its final state, where known

	waiters []chan<- outcome
}
