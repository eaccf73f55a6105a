package service

import "github.com/zkpaas/paas/internal/attempt"

// The causes set on a handler's context when the service cancels it, under the names the
// service's files use; attempt.Judge, which sorts every attempt, reads them.
var (
	errCancelled   = attempt.ErrCancelled
	errInterrupted = attempt.ErrInterrupted
	errTimedOut    = attempt.ErrTimedOut
	errCrashed     = attempt.ErrCrashed
)
