package paas

import "time"

// SubmitOption sets an option of a task at Submit. Options are part of the task, not of its
// identity: submitting a program that is already a task returns that task, whatever options
// the second Submit gives.
type SubmitOption func(*SubmitOptions)

// SubmitOptions are the options of a task, as the SubmitOption functions (After, Priority,
// Timeout) set them and package service reads them. It is exported for that reader: its
// fields hold TaskIDs, so it cannot live in an internal package this one imports.
type SubmitOptions struct {
	DependsOn []TaskID
	Priority  int
	// Timeout is as given to Timeout; it counts only if TimeoutSet.
	Timeout    time.Duration
	TimeoutSet bool
}

// After makes the task wait, Blocked, until every task in ids has Completed. If one of them
// ends Failed or Cancelled, the task fails with a *DependencyError naming it. Submit refuses
// ids that name no task (ErrUnknownDependency) and dependencies that have already failed.
func After(ids ...TaskID) SubmitOption {
	return func(o *SubmitOptions) { o.DependsOn = append(o.DependsOn, ids...) }
}

// Priority sets the task's priority: within a backend, tasks of higher priority start first,
// and tasks of equal priority in submission order. The default is 0; negative values are
// allowed, for backfills that should yield to everything else.
func Priority(p int) SubmitOption {
	return func(o *SubmitOptions) { o.Priority = p }
}

// Timeout bounds each attempt of the task by d, overriding Config.Timeouts for its backend;
// see Config.Timeouts for how a timed-out attempt is retried. Timeout(0) means no timeout: the
// task opts out of its backend's default. A task submitted without Timeout has its backend's
// default. Submit refuses a negative d with ErrInvalidOption.
func Timeout(d time.Duration) SubmitOption {
	return func(o *SubmitOptions) { o.Timeout, o.TimeoutSet = d, true }
}
