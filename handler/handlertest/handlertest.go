package handlertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/internal/attempt"
	"github.com/zkpaas/paas/internal/codec"
)

// Result is what became of one attempt, and what the service would make of it.
type Result struct {
	// Err is what Prove returned; a panic becomes a *paas.PanicError, as in the service.
	Err error
	// Outcome is the state the service would move the task to: Completed, Failed, Retrying,
	// Blocked (its input is not ready, paas.NotReady) or Cancelled (Run's ctx ended).
	Outcome paas.TaskState
	// LastError is what the service would record as the task's last error
	// (paas.TaskStatus.LastError), such as "rpc down (gave up after 4 attempts)"; empty for
	// Completed.
	LastError string
	// RetryIn is how long the service would wait before the next attempt of a Retrying or
	// Blocked task: the delay of a paas.RetryAfter or paas.NotReady, else the backoff of the
	// retry policy (WithRetry). It is the backoff before jitter: the service takes a random
	// fraction of up to RetryConfig.Jitter off it. Zero for the other outcomes.
	RetryIn time.Duration
	// Restart reports that the handler asked, with paas.Restart, for the task's checkpoint to
	// be discarded.
	Restart bool
	// Checkpoints holds every checkpoint the handler saved with Task.SaveCheckpoint, in order.
	Checkpoints [][]byte
	// NextCheckpoint is what the next attempt would be given as Task.Checkpoint: the last
	// checkpoint saved, else the one this attempt was given, and nil after a Restart. Pass it
	// to the next Run with WithCheckpoint.
	NextCheckpoint []byte
	// Task is the task the handler was given.
	Task paas.Task
}

// Option changes the attempt that Run makes.
type Option func(*options)

type options struct {
	codec      paas.Codec
	attempt    int
	checkpoint []byte
	dependsOn  []paas.TaskID
	id         paas.TaskID
	retry      paas.RetryConfig
	timeout    time.Duration
}

// WithCodec encodes the program with c, as Config.Codec does; paas.JSONCodec by default.
func WithCodec(c paas.Codec) Option { return func(o *options) { o.codec = c } }

// WithAttempt makes the attempt the n-th (Task.Attempt, n >= 1; 1 by default). The earlier
// attempts count as transient failures: at attempt n the retry budget has n attempts spent, so
// a transient error at attempt RetryConfig.MaxRetries+1 fails the task.
func WithAttempt(n int) Option { return func(o *options) { o.attempt = n } }

// WithCheckpoint gives the handler the checkpoint saved by an earlier attempt, as
// Task.Checkpoint: usually the NextCheckpoint of an earlier Result.
func WithCheckpoint(checkpoint []byte) Option {
	return func(o *options) { o.checkpoint = slices.Clone(checkpoint) }
}

// WithDependsOn makes the task depend on the tasks ids (Task.DependsOn), as paas.After does at
// Submit. Their proofs are the handler's to read, with handler.DependencyProofs from its own
// proof store: store them there before Run, as the service guarantees that every dependency
// has completed before the task starts.
func WithDependsOn(ids ...paas.TaskID) Option {
	return func(o *options) { o.dependsOn = append(o.dependsOn, ids...) }
}

// WithTaskID sets the task's ID; by default every Run has a new one.
func WithTaskID(id paas.TaskID) Option { return func(o *options) { o.id = id } }

// WithRetry sets the retry policy (Config.Retry) that Outcome and RetryIn are judged by; its
// zero fields take their defaults, as in the service. paas.DefaultRetryConfig() by default.
func WithRetry(r paas.RetryConfig) Option { return func(o *options) { o.retry = r.WithDefaults() } }

// WithTimeout bounds the attempt, as Config.Timeouts or paas.Timeout at Submit do: once d has
// passed, the handler's context is cancelled, and the attempt is judged as one that ran out of
// time (Retrying while the budget lasts), whatever the handler returned but nil.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// Run makes one attempt of program on backend with h, as the service would, and returns what
// happened. It encodes program with the codec, builds the paas.Task the service would give the
// handler, with a SaveCheckpoint that records checkpoints, and calls h.Prove with a context
// that carries the task (paas.ContextWithTask), so that handler.DependencyProofs works inside
// it. It returns once Prove has returned; it starts no goroutine that outlives it.
//
// The handler's context is derived from ctx. The end of ctx stands for the user's Cancel of
// the running task (ProverHandle.Cancel): unless the handler then returns nil, the Outcome is
// Cancelled.
//
// The outcome is judged by the service's own rules, with paas.DefaultMaxInputWait and on a
// task whose earlier attempts all failed transiently (see WithAttempt): never found its input
// not ready, nor failed with paas.Restart. Run returns an error, and no Result, only for what
// the service would refuse at Submit: a nil handler or program, an empty backend, a program
// the codec cannot encode, or invalid options.
func Run(ctx context.Context, h handler.ProofHandler, program paas.ProgramType, backend paas.Backend, opts ...Option) (Result, error) {
	o := options{codec: paas.JSONCodec{}, attempt: 1, retry: paas.DefaultRetryConfig()}
	for _, opt := range opts {
		opt(&o)
	}
	task, err := o.task(h, program, backend)
	if err != nil {
		return Result{}, err
	}

	run, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.timeout > 0 {
		run, cancel = context.WithTimeoutCause(run, o.timeout, attempt.ErrTimedOut)
		defer cancel()
	}
	saved := &checkpoints{task: task.ID, attempt: task.Attempt}
	task.SaveCheckpoint = saved.save
	err = attempt.Prove(paas.ContextWithTask(run, task), h, task)
	saved.end()

	var cause error
	if run.Err() != nil {
		cause = attempt.ErrCancelled
		if errors.Is(context.Cause(run), attempt.ErrTimedOut) {
			cause = attempt.ErrTimedOut
		}
	}
	rec := paas.TaskRecord{
		ID: task.ID, RoutingKey: task.RoutingKey, Backend: task.Backend, Program: task.Program,
		DependsOn: task.DependsOn, Checkpoint: task.Checkpoint, State: paas.InProgress,
		Attempts: task.Attempt, Runs: task.Attempt,
	}
	policy := o.retry
	policy.Jitter = paas.Disabled // RetryIn is the backoff before jitter, so that it can be asserted
	v := attempt.Judge(err, cause, rec, policy, time.Now(), paas.DefaultMaxInputWait)

	res := Result{
		Err:         err,
		Outcome:     v.Next,
		LastError:   v.LastErr,
		Restart:     v.Restart,
		Checkpoints: saved.list,
		Task:        task,
	}
	if v.Next == paas.Retrying || v.Next == paas.Blocked {
		res.RetryIn = v.Delay
	}
	switch {
	case v.Restart:
	case len(saved.list) > 0:
		res.NextCheckpoint = slices.Clone(saved.list[len(saved.list)-1])
	default:
		res.NextCheckpoint = slices.Clone(task.Checkpoint)
	}
	return res, nil
}

// task returns the task the service would launch, or why it would refuse it.
func (o *options) task(h handler.ProofHandler, program paas.ProgramType, backend paas.Backend) (paas.Task, error) {
	switch {
	case h == nil:
		return paas.Task{}, fmt.Errorf("%w: handlertest: nil handler", paas.ErrInvalidConfig)
	case program == nil:
		return paas.Task{}, fmt.Errorf("%w: nil program", paas.ErrEncodeProgram)
	case backend == "":
		return paas.Task{}, fmt.Errorf("%w: empty backend name", paas.ErrUnknownBackend)
	case o.codec == nil:
		return paas.Task{}, fmt.Errorf("%w: nil codec", paas.ErrInvalidOption)
	case o.attempt < 1:
		return paas.Task{}, fmt.Errorf("%w: attempt %d, want >= 1", paas.ErrInvalidOption, o.attempt)
	case o.timeout < 0:
		return paas.Task{}, fmt.Errorf("%w: timeout %s, want >= 0", paas.ErrInvalidOption, o.timeout)
	}
	if err := o.retry.Validate(); err != nil {
		return paas.Task{}, err
	}
	encoded, err := codec.Encode(o.codec, program)
	if err != nil {
		return paas.Task{}, err
	}
	deps := make([]paas.TaskID, 0, len(o.dependsOn))
	for _, dep := range o.dependsOn {
		if dep.IsZero() {
			return paas.Task{}, fmt.Errorf("%w: the zero task id", paas.ErrUnknownDependency)
		}
		if !slices.Contains(deps, dep) {
			deps = append(deps, dep)
		}
	}
	id := o.id
	if id.IsZero() {
		id = paas.NewTaskID()
	}
	return paas.Task{
		ID:         id,
		RoutingKey: program.RoutingKey(),
		Backend:    backend,
		Program:    encoded,
		Attempt:    o.attempt,
		DependsOn:  deps,
		Checkpoint: o.checkpoint,
	}, nil
}

// checkpoints records the checkpoints an attempt saves. A handler may save from goroutines of
// its own, hence the mutex.
type checkpoints struct {
	task    paas.TaskID
	attempt int

	mu    sync.Mutex
	ended bool
	list  [][]byte
}

// save is the attempt's Task.SaveCheckpoint. Like the service's, it fails once the attempt
// has ended, and for a ctx that has ended.
func (c *checkpoints) save(ctx context.Context, checkpoint []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return fmt.Errorf("%w: task %s: attempt %d is not running", paas.ErrCheckpointRefused, c.task, c.attempt)
	}
	c.list = append(c.list, slices.Clone(checkpoint))
	return nil
}

func (c *checkpoints) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended = true
}
