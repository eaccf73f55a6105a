package handlertest_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/handler/handlertest"
	"github.com/zkpaas/paas/store/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// returning is a handler that returns err, and records the task and context it was given.
type returning struct {
	err  error
	task paas.Task
	ctx  context.Context
}

func (h *returning) Prove(ctx context.Context, task paas.Task) error {
	h.task, h.ctx = task, ctx
	return h.err
}

func run(t *testing.T, h handler.ProofHandler, opts ...handlertest.Option) handlertest.Result {
	t.Helper()
	res, err := handlertest.Run(t.Context(), h, fibProgram{N: 7}, paas.BackendSP1, opts...)
	require.NoError(t, err)
	return res
}

func TestRunGivesTheTaskTheServiceWould(t *testing.T) {
	h := &returning{}
	res := run(t, h)

	assert.Equal(t, h.task.ID, res.Task.ID, "Result.Task is the task given")
	assert.False(t, res.Task.ID.IsZero())
	assert.Equal(t, paas.RoutingKey("fib"), res.Task.RoutingKey)
	assert.Equal(t, paas.BackendSP1, res.Task.Backend)
	assert.JSONEq(t, `{"N":7}`, string(res.Task.Program))
	assert.Equal(t, 1, res.Task.Attempt)
	assert.Empty(t, res.Task.DependsOn)
	assert.Nil(t, res.Task.Checkpoint)
	require.NotNil(t, res.Task.SaveCheckpoint)

	got, ok := paas.TaskFromContext(h.ctx)
	require.True(t, ok, "the handler's context carries its task")
	assert.Equal(t, res.Task.ID, got.ID)
	assert.Equal(t, res.Task.Attempt, got.Attempt)

	assert.NotEqual(t, res.Task.ID, run(t, h).Task.ID, "every Run has a task of its own")
}

func TestRunOptionsShapeTheTask(t *testing.T) {
	id, a, b := paas.NewTaskID(), paas.NewTaskID(), paas.NewTaskID()
	var calls int
	h := &returning{}
	res := run(t, h,
		handlertest.WithTaskID(id),
		handlertest.WithAttempt(3),
		handlertest.WithCheckpoint([]byte("cp")),
		handlertest.WithDependsOn(a, b, a),
		handlertest.WithCodec(decimalCodec{calls: &calls}))

	assert.Equal(t, id, h.task.ID)
	assert.Equal(t, 3, h.task.Attempt)
	assert.Equal(t, []byte("cp"), h.task.Checkpoint)
	assert.Equal(t, []paas.TaskID{a, b}, h.task.DependsOn, "in order, once each, as paas.After")
	assert.Equal(t, []byte("7"), h.task.Program)
	assert.Equal(t, 2, calls, "the codec encodes the program, and its decoding again, as Submit does")
	assert.Equal(t, h.task.ID, res.Task.ID)
}

func TestRunOutcomeIsTheService(t *testing.T) {
	errRPC := errors.New("rpc down")
	tests := []struct {
		name    string
		err     error
		attempt int
		want    paas.TaskState
		retryIn time.Duration
		lastErr string
	}{
		{"nil", nil, 1, paas.Completed, 0, ""},
		{"transient", errRPC, 1, paas.Retrying, time.Second, "rpc down"},
		{"transient, third attempt", errRPC, 3, paas.Retrying, 4 * time.Second, "rpc down"},
		{"transient, budget spent", errRPC, 4, paas.Failed, 0, "rpc down (gave up after 4 attempts)"},
		{"permanent", paas.Permanent(errRPC), 1, paas.Failed, 0, "permanent: rpc down"},
		{"retry after", paas.RetryAfter(errRPC, time.Hour), 1, paas.Retrying, time.Hour, "retry after 1h0m0s: rpc down"},
		{"not ready", paas.NotReady(errRPC, time.Minute), 1, paas.Blocked, time.Minute, "input not ready, look again after 1m0s: rpc down"},
		{"not ready past the input wait", paas.NotReady(errRPC, 48*time.Hour), 1, paas.Blocked, paas.DefaultMaxInputWait, "input not ready, look again after 48h0m0s: rpc down"},
		{"restart", paas.Restart(errRPC), 1, paas.Retrying, time.Second, "restart: rpc down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := run(t, &returning{err: tt.err}, handlertest.WithAttempt(tt.attempt))
			assert.Equal(t, tt.err, res.Err)
			assert.Equal(t, tt.want, res.Outcome)
			assert.Equal(t, tt.retryIn, res.RetryIn)
			assert.Equal(t, tt.lastErr, res.LastError)
		})
	}
}

func TestRunPanicFailsTheTask(t *testing.T) {
	res := run(t, handler.ProofHandlerFunc(func(context.Context, paas.Task) error { panic("boom") }))

	var p *paas.PanicError
	require.ErrorAs(t, res.Err, &p)
	assert.Equal(t, "boom", p.Value)
	assert.NotEmpty(t, p.Stack)
	assert.Equal(t, paas.Failed, res.Outcome)
}

func TestWithRetrySetsTheBudgetAndBackoff(t *testing.T) {
	policy := paas.RetryConfig{MaxRetries: 1, BaseDelay: 3 * time.Second, Multiplier: 10, Jitter: 1}
	h := &returning{err: errors.New("x")}

	first := run(t, h, handlertest.WithRetry(policy))
	assert.Equal(t, paas.Retrying, first.Outcome)
	assert.Equal(t, 3*time.Second, first.RetryIn, "the backoff before jitter")

	second := run(t, h, handlertest.WithRetry(policy), handlertest.WithAttempt(2))
	assert.Equal(t, paas.Failed, second.Outcome, "one retry only")

	policy.MaxRetries = 2
	second = run(t, h, handlertest.WithRetry(policy), handlertest.WithAttempt(2))
	assert.Equal(t, paas.Retrying, second.Outcome)
	assert.Equal(t, 30*time.Second, second.RetryIn)

	restart := run(t, &returning{err: paas.Restart(errors.New("lost"))}, handlertest.WithRetry(paas.RetryConfig{MaxRestarts: paas.Disabled}))
	assert.Equal(t, paas.Failed, restart.Outcome, "no restarts allowed")
	assert.True(t, restart.Restart)
}

func TestRunRecordsCheckpoints(t *testing.T) {
	h := handler.ProofHandlerFunc(func(ctx context.Context, task paas.Task) error {
		b := []byte("one")
		if err := task.SaveCheckpoint(ctx, b); err != nil {
			return err
		}
		copy(b, "two") // the saved checkpoint is a copy
		return task.SaveCheckpoint(ctx, []byte("three"))
	})

	res := run(t, h, handlertest.WithCheckpoint([]byte("zero")))

	require.NoError(t, res.Err)
	assert.Equal(t, [][]byte{[]byte("one"), []byte("three")}, res.Checkpoints)
	assert.Equal(t, []byte("three"), res.NextCheckpoint, "the last one saved")
	assert.False(t, res.Restart)
}

func TestRunNextCheckpoint(t *testing.T) {
	t.Run("none saved: the one given", func(t *testing.T) {
		res := run(t, &returning{err: errors.New("x")}, handlertest.WithCheckpoint([]byte("given")))
		assert.Equal(t, []byte("given"), res.NextCheckpoint)
		assert.Empty(t, res.Checkpoints)
	})
	t.Run("none at all", func(t *testing.T) {
		assert.Nil(t, run(t, &returning{err: errors.New("x")}).NextCheckpoint)
	})
	t.Run("discarded by Restart", func(t *testing.T) {
		h := handler.ProofHandlerFunc(func(ctx context.Context, task paas.Task) error {
			if err := task.SaveCheckpoint(ctx, []byte("new")); err != nil {
				return err
			}
			return paas.Restart(errors.New("request lost"))
		})
		res := run(t, h, handlertest.WithCheckpoint([]byte("given")))
		assert.True(t, res.Restart)
		assert.Equal(t, paas.Retrying, res.Outcome)
		assert.Equal(t, [][]byte{[]byte("new")}, res.Checkpoints)
		assert.Nil(t, res.NextCheckpoint)
	})
}

func TestSaveCheckpointFailsOnceTheAttemptEnded(t *testing.T) {
	h := &returning{}
	res := run(t, h)

	err := h.task.SaveCheckpoint(t.Context(), []byte("late"))

	require.ErrorIs(t, err, paas.ErrCheckpointRefused, "as the service refuses it")
	assert.ErrorContains(t, err, "not running")
	assert.Empty(t, res.Checkpoints)
}

func TestSaveCheckpointFailsOnAnEndedContext(t *testing.T) {
	h := handler.ProofHandlerFunc(func(ctx context.Context, task paas.Task) error {
		done, cancel := context.WithCancel(ctx)
		cancel()
		return task.SaveCheckpoint(done, []byte("cp"))
	})

	res := run(t, h)

	require.ErrorIs(t, res.Err, context.Canceled)
	assert.Empty(t, res.Checkpoints)
}

func TestSaveCheckpointFromManyGoroutines(t *testing.T) {
	const n = 8
	h := handler.ProofHandlerFunc(func(ctx context.Context, task paas.Task) error {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { _ = task.SaveCheckpoint(ctx, []byte(strconv.Itoa(i))) })
		}
		wg.Wait()
		return nil
	})

	assert.Len(t, run(t, h).Checkpoints, n)
}

func TestRunCheckpointResumes(t *testing.T) {
	network := &remoteNetwork{done: map[string]bool{}}
	h := remoteHandler(network)

	first := run(t, h)
	require.Equal(t, paas.Retrying, first.Outcome)
	require.Equal(t, [][]byte{[]byte("req-1")}, first.Checkpoints)

	network.done["req-1"] = true
	second := run(t, h, handlertest.WithAttempt(2), handlertest.WithCheckpoint(first.NextCheckpoint))

	assert.Equal(t, paas.Completed, second.Outcome)
	assert.Equal(t, []byte("req-1"), second.Task.Checkpoint)
	assert.Equal(t, 1, network.requests, "the second attempt polled the first one's request")
}

func TestRunDependencyProofs(t *testing.T) {
	proofs := memory.NewProofStore()
	a, b := paas.NewTaskID(), paas.NewTaskID()
	require.NoError(t, proofs.StoreProof(t.Context(), a, paas.Proof{PublicValues: []byte("a")}))
	require.NoError(t, proofs.StoreProof(t.Context(), b, paas.Proof{PublicValues: []byte("b")}))
	var got []string
	h := handler.ProofHandlerFunc(func(ctx context.Context, _ paas.Task) error {
		deps, err := handler.DependencyProofs(ctx, proofs)
		for _, p := range deps {
			got = append(got, string(p.PublicValues))
		}
		return err
	})

	res := run(t, h, handlertest.WithDependsOn(b, a))

	require.NoError(t, res.Err)
	assert.Equal(t, []string{"b", "a"}, got, "in the order of DependsOn")
}

func TestRunEndedContextIsCancel(t *testing.T) {
	blocking := handler.ProofHandlerFunc(func(ctx context.Context, _ paas.Task) error {
		<-ctx.Done()
		return ctx.Err()
	})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	res, err := handlertest.Run(ctx, blocking, fibProgram{N: 1}, paas.BackendSP1)
	require.NoError(t, err)
	assert.Equal(t, paas.Cancelled, res.Outcome)
	assert.Equal(t, "context canceled", res.LastError)

	done := handler.ProofHandlerFunc(func(context.Context, paas.Task) error { return nil })
	res, err = handlertest.Run(ctx, done, fibProgram{N: 1}, paas.BackendSP1)
	require.NoError(t, err)
	assert.Equal(t, paas.Completed, res.Outcome, "a proof made despite the cancel is kept")
}

func TestWithTimeoutTimesTheAttemptOut(t *testing.T) {
	var deadline time.Time
	blocking := handler.ProofHandlerFunc(func(ctx context.Context, _ paas.Task) error {
		deadline, _ = ctx.Deadline()
		<-ctx.Done()
		return ctx.Err()
	})
	before := time.Now()

	res := run(t, blocking, handlertest.WithTimeout(time.Millisecond))

	assert.WithinDuration(t, before.Add(time.Millisecond), deadline, time.Second)
	assert.Equal(t, paas.Retrying, res.Outcome)
	assert.Equal(t, time.Second, res.RetryIn)
	assert.Equal(t, "attempt timed out: context deadline exceeded", res.LastError)

	res = run(t, blocking, handlertest.WithTimeout(time.Millisecond), handlertest.WithAttempt(4))
	assert.Equal(t, paas.Failed, res.Outcome, "a timed-out attempt spends the budget")
}

func TestRunRefusesWhatSubmitWould(t *testing.T) {
	h := &returning{}
	tests := []struct {
		name    string
		h       handler.ProofHandler
		program paas.ProgramType
		backend paas.Backend
		opts    []handlertest.Option
		want    error
	}{
		{"nil program", h, nil, paas.BackendSP1, nil, paas.ErrEncodeProgram},
		{"unencodable program", h, badProgram{C: make(chan int)}, paas.BackendSP1, nil, paas.ErrEncodeProgram},
		{"not valid UTF-8", h, namedProgram{Name: "\xff"}, paas.BackendSP1, nil, paas.ErrEncodeProgram},
		{"empty backend", h, fibProgram{}, "", nil, paas.ErrUnknownBackend},
		{"attempt 0", h, fibProgram{}, paas.BackendSP1, []handlertest.Option{handlertest.WithAttempt(0)}, paas.ErrInvalidOption},
		{"nil codec", h, fibProgram{}, paas.BackendSP1, []handlertest.Option{handlertest.WithCodec(nil)}, paas.ErrInvalidOption},
		{"negative timeout", h, fibProgram{}, paas.BackendSP1, []handlertest.Option{handlertest.WithTimeout(-time.Second)}, paas.ErrInvalidOption},
		{"invalid retry", h, fibProgram{}, paas.BackendSP1, []handlertest.Option{handlertest.WithRetry(paas.RetryConfig{MaxRetries: -2})}, paas.ErrInvalidConfig},
		{"zero dependency", h, fibProgram{}, paas.BackendSP1, []handlertest.Option{handlertest.WithDependsOn(paas.TaskID{})}, paas.ErrUnknownDependency},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := handlertest.Run(t.Context(), tt.h, tt.program, tt.backend, tt.opts...)
			require.ErrorIs(t, err, tt.want)
		})
	}
	t.Run("nil handler", func(t *testing.T) {
		_, err := handlertest.Run(t.Context(), nil, fibProgram{}, paas.BackendSP1)
		require.ErrorIs(t, err, paas.ErrInvalidConfig, "as service.New refuses it")
	})
	assert.Nil(t, h.ctx, "the handler is not called for a refused task")
}

type badProgram struct{ C chan int }

func (badProgram) RoutingKey() paas.RoutingKey { return "bad" }

// decimalCodec encodes a fibProgram as its bare decimal N, which JSON would not.
type decimalCodec struct{ calls *int }

func (c decimalCodec) Marshal(v any) ([]byte, error) {
	*c.calls++
	return []byte(strconv.Itoa(v.(fibProgram).N)), nil
}

func (c decimalCodec) Unmarshal(data []byte, v any) error {
	n, err := strconv.Atoi(string(data))
	*v.(*fibProgram) = fibProgram{N: n}
	return err
}

type namedProgram struct{ Name string }

func (namedProgram) RoutingKey() paas.RoutingKey { return "named" }
