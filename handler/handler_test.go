package handler_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/store/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type testProgram struct{ N int }

func (testProgram) RoutingKey() paas.RoutingKey { return "test" }

// fixture is a RemoteProofHandler whose pieces record their calls.
type fixture struct {
	h       *handler.RemoteProofHandler[testProgram, int]
	fetched []testProgram
	proved  []int
	stored  map[paas.TaskID]paas.Proof
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{stored: map[paas.TaskID]paas.Proof{}}
	host := handler.HostFunc[int](func(_ context.Context, in int) (paas.Proof, error) {
		f.proved = append(f.proved, in)
		return paas.Proof{Backend: paas.BackendSP1, Receipt: []byte("receipt"), PublicValues: []byte(strconv.Itoa(in * 2))}, nil
	})
	f.h = &handler.RemoteProofHandler[testProgram, int]{
		Fetcher: handler.InputFetcherFunc[testProgram, int](func(_ context.Context, p testProgram) (int, error) {
			f.fetched = append(f.fetched, p)
			return p.N + 1, nil
		}),
		Hosts: handler.HostMap[int]{paas.BackendSP1: host},
		Storer: paas.ProofStorerFunc(func(_ context.Context, id paas.TaskID, p paas.Proof) error {
			f.stored[id] = p
			return nil
		}),
	}
	require.NoError(t, f.h.Validate())
	return f
}

func task(t *testing.T, p testProgram, backend paas.Backend) paas.Task {
	t.Helper()
	b, err := paas.JSONCodec{}.Marshal(p)
	require.NoError(t, err)
	return paas.Task{ID: paas.NewTaskID(), RoutingKey: p.RoutingKey(), Backend: backend, Program: b, Attempt: 1}
}

func TestRemoteProofHandlerStoresProof(t *testing.T) {
	f := newFixture(t)
	tk := task(t, testProgram{N: 20}, paas.BackendSP1)

	require.NoError(t, f.h.Prove(t.Context(), tk))

	assert.Equal(t, []testProgram{{N: 20}}, f.fetched)
	assert.Equal(t, []int{21}, f.proved)
	require.Len(t, f.stored, 1)
	assert.Equal(t, paas.Proof{Backend: paas.BackendSP1, Receipt: []byte("receipt"), PublicValues: []byte("42")}, f.stored[tk.ID])
}

func TestRemoteProofHandlerDecodeFailureIsPermanent(t *testing.T) {
	f := newFixture(t)
	tk := task(t, testProgram{N: 1}, paas.BackendSP1)
	tk.Program = []byte("{not json")

	err := f.h.Prove(t.Context(), tk)

	var perm *paas.PermanentError
	require.ErrorAs(t, err, &perm)
	assert.ErrorContains(t, err, "decode program")
	assert.Empty(t, f.fetched)
	assert.Empty(t, f.stored)
}

func TestRemoteProofHandlerUnknownBackendIsPermanent(t *testing.T) {
	f := newFixture(t)

	err := f.h.Prove(t.Context(), task(t, testProgram{N: 1}, paas.BackendRisc0))

	var perm *paas.PermanentError
	require.ErrorAs(t, err, &perm)
	require.ErrorIs(t, err, handler.ErrNoHost)
	assert.ErrorContains(t, err, string(paas.BackendRisc0))
	assert.Empty(t, f.fetched, "nothing is fetched for a task that cannot be proven")
}

func TestRemoteProofHandlerResolverErrors(t *testing.T) {
	f := newFixture(t)
	f.h.Hosts = nil // a Resolver alone is enough
	errBoom := errors.New("boom")

	t.Run("error is permanent", func(t *testing.T) {
		f.h.Resolver = handler.HostResolverFunc[testProgram, int](func(testProgram, paas.Backend) (handler.Host[int], error) {
			return nil, errBoom
		})
		err := f.h.Prove(t.Context(), task(t, testProgram{N: 1}, paas.BackendSP1))
		var perm *paas.PermanentError
		require.ErrorAs(t, err, &perm)
		assert.ErrorIs(t, err, errBoom)
	})
	t.Run("permanent error is not wrapped twice", func(t *testing.T) {
		f.h.Resolver = handler.HostResolverFunc[testProgram, int](func(testProgram, paas.Backend) (handler.Host[int], error) {
			return nil, paas.Permanent(errBoom)
		})
		err := f.h.Prove(t.Context(), task(t, testProgram{N: 1}, paas.BackendSP1))
		assert.EqualError(t, err, "handler: resolve host: permanent: boom")
	})
	t.Run("nil host is permanent", func(t *testing.T) {
		f.h.Resolver = handler.HostResolverFunc[testProgram, int](func(testProgram, paas.Backend) (handler.Host[int], error) {
			return nil, nil
		})
		err := f.h.Prove(t.Context(), task(t, testProgram{N: 1}, paas.BackendSP1))
		var perm *paas.PermanentError
		require.ErrorAs(t, err, &perm)
		assert.ErrorIs(t, err, handler.ErrNoHost)
	})
}

func TestRemoteProofHandlerFetchErrorIsTransient(t *testing.T) {
	f := newFixture(t)
	errRPC := errors.New("rpc unavailable")
	f.h.Fetcher = handler.InputFetcherFunc[testProgram, int](func(context.Context, testProgram) (int, error) {
		return 0, errRPC
	})

	err := f.h.Prove(t.Context(), task(t, testProgram{N: 1}, paas.BackendSP1))

	require.ErrorIs(t, err, errRPC)
	assert.ErrorContains(t, err, "fetch input")
	var perm *paas.PermanentError
	assert.False(t, errors.As(err, &perm), "a fetch error must be retried: %v", err)
	assert.Empty(t, f.proved, "the host must not be called without an input")
	assert.Empty(t, f.stored)
}

func TestRemoteProofHandlerPermanentFetchErrorSurvives(t *testing.T) {
	f := newFixture(t)
	f.h.Fetcher = handler.InputFetcherFunc[testProgram, int](func(context.Context, testProgram) (int, error) {
		return 0, paas.Permanent(errors.New("block pruned"))
	})

	err := f.h.Prove(t.Context(), task(t, testProgram{N: 1}, paas.BackendSP1))

	var perm *paas.PermanentError
	require.ErrorAs(t, err, &perm)
	assert.EqualError(t, perm.Err, "block pruned")
}

func TestRemoteProofHandlerRetryAfterFromHostSurvives(t *testing.T) {
	f := newFixture(t)
	f.h.Hosts = handler.HostMap[int]{
		paas.BackendSP1: handler.HostFunc[int](func(context.Context, int) (paas.Proof, error) {
			return paas.Proof{}, paas.RetryAfter(errors.New("prover busy"), 30*time.Second)
		}),
	}

	err := f.h.Prove(t.Context(), task(t, testProgram{N: 1}, paas.BackendSP1))

	var ra *paas.RetryAfterError
	require.ErrorAs(t, err, &ra)
	assert.Equal(t, 30*time.Second, ra.Delay)
	assert.ErrorContains(t, err, "prove on sp1")
	var perm *paas.PermanentError
	assert.False(t, errors.As(err, &perm))
	assert.Empty(t, f.stored)
}

func TestRemoteProofHandlerStoreErrorIsReturned(t *testing.T) {
	f := newFixture(t)
	errDB := errors.New("db down")
	f.h.Storer = paas.ProofStorerFunc(func(context.Context, paas.TaskID, paas.Proof) error { return errDB })

	err := f.h.Prove(t.Context(), task(t, testProgram{N: 1}, paas.BackendSP1))

	require.ErrorIs(t, err, errDB)
	assert.ErrorContains(t, err, "store proof")
}

func TestRemoteProofHandlerFillsProofBackend(t *testing.T) {
	f := newFixture(t)
	f.h.Hosts = handler.HostMap[int]{
		"gpu-farm": handler.HostFunc[int](func(context.Context, int) (paas.Proof, error) {
			return paas.Proof{Receipt: []byte("r")}, nil
		}),
	}
	tk := task(t, testProgram{N: 1}, "gpu-farm")

	require.NoError(t, f.h.Prove(t.Context(), tk))

	assert.Equal(t, paas.Backend("gpu-farm"), f.stored[tk.ID].Backend)
}

type ctxKey struct{}

func TestRemoteProofHandlerPassesContext(t *testing.T) {
	ctx := context.WithValue(t.Context(), ctxKey{}, "trace-7")
	var seen []string
	record := func(step string, ctx context.Context) {
		v, _ := ctx.Value(ctxKey{}).(string)
		seen = append(seen, step+"="+v)
	}
	h := &handler.RemoteProofHandler[testProgram, int]{
		Fetcher: handler.InputFetcherFunc[testProgram, int](func(ctx context.Context, p testProgram) (int, error) {
			record("fetch", ctx)
			return p.N, nil
		}),
		Hosts: handler.HostMap[int]{
			paas.BackendSP1: handler.HostFunc[int](func(ctx context.Context, in int) (paas.Proof, error) {
				record("prove", ctx)
				return paas.Proof{}, nil
			}),
		},
		Storer: paas.ProofStorerFunc(func(ctx context.Context, _ paas.TaskID, _ paas.Proof) error {
			record("store", ctx)
			return nil
		}),
	}

	require.NoError(t, h.Prove(ctx, task(t, testProgram{N: 1}, paas.BackendSP1)))

	assert.Equal(t, []string{"fetch=trace-7", "prove=trace-7", "store=trace-7"}, seen)
}

func TestRemoteProofHandlerCancelledContext(t *testing.T) {
	t.Run("before fetch", func(t *testing.T) {
		f := newFixture(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()

		err := f.h.Prove(ctx, task(t, testProgram{N: 1}, paas.BackendSP1))

		require.ErrorIs(t, err, context.Canceled)
		assert.Empty(t, f.fetched)
		assert.Empty(t, f.proved)
	})
	t.Run("during fetch", func(t *testing.T) {
		f := newFixture(t)
		ctx, cancel := context.WithCancel(t.Context())
		// A fetcher that ignores ctx: the handler must still not start the proof.
		f.h.Fetcher = handler.InputFetcherFunc[testProgram, int](func(context.Context, testProgram) (int, error) {
			cancel()
			return 1, nil
		})

		err := f.h.Prove(ctx, task(t, testProgram{N: 1}, paas.BackendSP1))

		require.ErrorIs(t, err, context.Canceled)
		assert.Empty(t, f.proved)
		assert.Empty(t, f.stored)
	})
}

// decimalCodec encodes a testProgram as its bare decimal N, which JSON cannot decode into a
// struct: a handler that ignored it would fail.
type decimalCodec struct{ calls *int }

func (c decimalCodec) Marshal(v any) ([]byte, error) {
	return []byte(strconv.Itoa(v.(testProgram).N)), nil
}

func (c decimalCodec) Unmarshal(data []byte, v any) error {
	*c.calls++
	n, err := strconv.Atoi(string(data))
	if err != nil {
		return err
	}
	*v.(*testProgram) = testProgram{N: n}
	return nil
}

func TestRemoteProofHandlerUsesCodec(t *testing.T) {
	f := newFixture(t)
	var calls int
	f.h.Codec = decimalCodec{calls: &calls}
	tk := paas.Task{ID: paas.NewTaskID(), RoutingKey: "test", Backend: paas.BackendSP1, Program: []byte("9"), Attempt: 1}

	require.NoError(t, f.h.Prove(t.Context(), tk))

	assert.Equal(t, 1, calls)
	assert.Equal(t, []testProgram{{N: 9}}, f.fetched)

	// The same bytes are not JSON for a testProgram, so the default codec must reject them.
	f.h.Codec = nil
	var perm *paas.PermanentError
	require.ErrorAs(t, f.h.Prove(t.Context(), tk), &perm)
}

func TestRemoteProofHandlerValidate(t *testing.T) {
	full := newFixture(t).h
	tests := []struct {
		name  string
		clear func(h *handler.RemoteProofHandler[testProgram, int])
		want  []string
	}{
		{"Fetcher", func(h *handler.RemoteProofHandler[testProgram, int]) { h.Fetcher = nil }, []string{"Fetcher"}},
		{"Hosts", func(h *handler.RemoteProofHandler[testProgram, int]) { h.Hosts = nil }, []string{"Hosts"}},
		{"Storer", func(h *handler.RemoteProofHandler[testProgram, int]) { h.Storer = nil }, []string{"Storer"}},
		{"all", func(h *handler.RemoteProofHandler[testProgram, int]) {
			*h = handler.RemoteProofHandler[testProgram, int]{}
		}, []string{"Fetcher", "Hosts", "Storer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := *full
			tt.clear(&h)

			err := h.Validate()
			require.ErrorIs(t, err, handler.ErrIncomplete)
			for _, field := range []string{"Fetcher", "Hosts", "Storer"} {
				if slices.Contains(tt.want, field) {
					assert.ErrorContains(t, err, field)
				} else {
					assert.NotContains(t, err.Error(), field)
				}
			}

			// Prove must fail permanently, not panic on the nil field.
			err = h.Prove(t.Context(), task(t, testProgram{N: 1}, paas.BackendSP1))
			var perm *paas.PermanentError
			require.ErrorAs(t, err, &perm)
			assert.ErrorIs(t, err, handler.ErrIncomplete)
		})
	}
}

// namedHost is a Host that is comparable, so tests can tell which one was resolved.
type namedHost string

func (namedHost) Prove(context.Context, int) (paas.Proof, error) { return paas.Proof{}, nil }

func TestHostMapHost(t *testing.T) {
	m := handler.HostMap[int]{
		paas.BackendNative: namedHost("native"),
		"gpu":              namedHost("gpu"),
		paas.BackendSP1:    nil,
	}

	for _, b := range []paas.Backend{paas.BackendNative, "gpu"} {
		h, err := m.Host(b)
		require.NoError(t, err)
		assert.Equal(t, namedHost(b), h)
	}

	for _, b := range []paas.Backend{paas.BackendRisc0, paas.BackendSP1} {
		_, err := m.Host(b)
		require.ErrorIs(t, err, handler.ErrNoHost, "backend %s", b)
	}
}

func TestNativeHost(t *testing.T) {
	ctx := context.WithValue(t.Context(), ctxKey{}, "v")
	h := handler.NativeHost[int]{Run: func(ctx context.Context, in int) ([]byte, error) {
		if ctx.Value(ctxKey{}) != "v" {
			return nil, errors.New("context not passed")
		}
		return []byte(strconv.Itoa(in * in)), nil
	}}

	p, err := h.Prove(ctx, 12)

	require.NoError(t, err)
	assert.Equal(t, paas.Proof{Backend: paas.BackendNative, PublicValues: []byte("144")}, p)
	assert.Empty(t, p.Receipt, "the native backend proves nothing")
}

func TestNativeHostErrors(t *testing.T) {
	t.Run("Run error is returned as is", func(t *testing.T) {
		errExec := errors.New("execution failed")
		h := handler.NativeHost[int]{Run: func(context.Context, int) ([]byte, error) { return nil, errExec }}
		_, err := h.Prove(t.Context(), 1)
		assert.Equal(t, errExec, err)
	})
	t.Run("nil Run", func(t *testing.T) {
		_, err := handler.NativeHost[int]{}.Prove(t.Context(), 1)
		var perm *paas.PermanentError
		require.ErrorAs(t, err, &perm)
		assert.ErrorIs(t, err, handler.ErrIncomplete)
	})
}

func TestProofHandlerFunc(t *testing.T) {
	var got paas.Task
	want := paas.Task{ID: paas.NewTaskID(), RoutingKey: "k", Backend: paas.BackendSP1, Attempt: 3}
	errOut := errors.New("out")
	var h handler.ProofHandler = handler.ProofHandlerFunc(func(_ context.Context, tk paas.Task) error {
		got = tk
		return errOut
	})

	assert.Equal(t, errOut, h.Prove(t.Context(), want))
	assert.Equal(t, want, got)
}

type proofMap map[paas.TaskID]paas.Proof

func (m proofMap) Proof(_ context.Context, id paas.TaskID) (paas.Proof, error) {
	p, ok := m[id]
	if !ok {
		return paas.Proof{}, errors.New("no proof")
	}
	return p, nil
}

func TestDependencyProofsReadsTheProofsOfTheTaskInTheContext(t *testing.T) {
	a, b := paas.NewTaskID(), paas.NewTaskID()
	proofs := proofMap{a: {Receipt: []byte("a")}, b: {Receipt: []byte("b")}}
	ctx := paas.ContextWithTask(context.Background(), paas.Task{ID: paas.NewTaskID(), DependsOn: []paas.TaskID{b, a}})
	got, err := handler.DependencyProofs(ctx, proofs)
	require.NoError(t, err)
	assert.Equal(t, []paas.Proof{{Receipt: []byte("b")}, {Receipt: []byte("a")}}, got, "in DependsOn order")

	_, err = handler.DependencyProofs(context.Background(), proofs)
	assert.ErrorIs(t, err, handler.ErrNoTask)
	missing := paas.ContextWithTask(context.Background(), paas.Task{DependsOn: []paas.TaskID{paas.NewTaskID()}})
	_, err = handler.DependencyProofs(missing, proofs)
	assert.ErrorContains(t, err, "proof of dependency")
}

// A crash between storing a proof and recording the task Completed runs the task again; a
// Storer that can read proofs back spares it the second proof.
func TestRemoteProofHandlerDoesNotProveAgainATaskWhoseProofIsStored(t *testing.T) {
	f := newFixture(t)
	proofs := memory.NewProofStore()
	f.h.Storer = proofs
	tk := task(t, testProgram{N: 1}, paas.BackendSP1)
	require.NoError(t, f.h.Prove(t.Context(), tk))
	require.Len(t, f.proved, 1)
	first, err := proofs.Proof(t.Context(), tk.ID)
	require.NoError(t, err)

	tk.Attempt = 2 // the same task, run again after the crash
	require.NoError(t, f.h.Prove(t.Context(), tk))
	assert.Len(t, f.proved, 1, "the stored proof is not paid for twice")
	assert.Len(t, f.fetched, 1, "nor its input fetched again")
	again, err := proofs.Proof(t.Context(), tk.ID)
	require.NoError(t, err)
	assert.Equal(t, first, again)

	other := task(t, testProgram{N: 2}, paas.BackendSP1)
	require.NoError(t, f.h.Prove(t.Context(), other))
	assert.Len(t, f.proved, 2, "a task without a stored proof is proven")
}

func TestRemoteProofHandlerResolverTakesPrecedenceOverHosts(t *testing.T) {
	f := newFixture(t) // its Hosts prove on sp1
	chosen := handler.HostFunc[int](func(context.Context, int) (paas.Proof, error) {
		return paas.Proof{Receipt: []byte("from the resolver's host")}, nil
	})
	f.h.Resolver = handler.HostResolverFunc[testProgram, int](func(p testProgram, _ paas.Backend) (handler.Host[int], error) {
		return chosen, nil
	})
	tk := task(t, testProgram{N: 1}, paas.BackendSP1)
	require.NoError(t, f.h.Prove(t.Context(), tk))
	assert.Empty(t, f.proved, "the Hosts are not asked when there is a Resolver")
	assert.Equal(t, "from the resolver's host", string(f.stored[tk.ID].Receipt))
}
