package handler

import (
	"context"
	"fmt"

	"github.com/zkpaas/paas"
)

// Host proves inputs on one backend, locally or by calling a remote prover.
// Its errors are transient unless wrapped with paas.Permanent or paas.RetryAfter.
type Host[I any] interface {
	Prove(ctx context.Context, input I) (paas.Proof, error)
}

// HostFunc adapts a function to a Host.
type HostFunc[I any] func(ctx context.Context, input I) (paas.Proof, error)

// Prove implements Host by calling f.
func (f HostFunc[I]) Prove(ctx context.Context, input I) (paas.Proof, error) { return f(ctx, input) }

// HostResolver picks the Host that proves a program on a backend, for a RemoteProofHandler
// whose host depends on the program (a large proof to a bigger prover, say); when it depends
// on the backend alone, a HostMap is enough. Its errors fail the task permanently: the
// program and backend of a task never change, so neither would the answer.
type HostResolver[P, I any] interface {
	ResolveHost(program P, backend paas.Backend) (Host[I], error)
}

// HostResolverFunc adapts a function to a HostResolver.
type HostResolverFunc[P, I any] func(program P, backend paas.Backend) (Host[I], error)

// ResolveHost implements HostResolver by calling f.
func (f HostResolverFunc[P, I]) ResolveHost(program P, backend paas.Backend) (Host[I], error) {
	return f(program, backend)
}

// HostMap holds one host per backend, whatever the program: RemoteProofHandler.Hosts.
type HostMap[I any] map[paas.Backend]Host[I]

// Host returns the host of backend, or an error wrapping ErrNoHost for a backend that has no
// host, or a nil one.
func (m HostMap[I]) Host(backend paas.Backend) (Host[I], error) {
	if h := m[backend]; h != nil {
		return h, nil
	}
	return nil, fmt.Errorf("%w %q", ErrNoHost, backend)
}

// NativeHost is a Host for paas.BackendNative: it runs the program natively and returns its
// output without proving it. Use it in tests, or to check a program's output before paying for
// a proof.
type NativeHost[I any] struct {
	// Run executes the program on input and returns its public output.
	Run func(ctx context.Context, input I) ([]byte, error)
}

var _ Host[struct{}] = NativeHost[struct{}]{}

// Prove implements Host. The returned paas.Proof has Backend paas.BackendNative, no Receipt, and
// Run's output as PublicValues. Errors from Run are returned as they are; a nil Run is a
// configuration error wrapping ErrIncomplete, and permanent.
func (h NativeHost[I]) Prove(ctx context.Context, input I) (paas.Proof, error) {
	if h.Run == nil {
		return paas.Proof{}, paas.Permanent(fmt.Errorf("%w: NativeHost has no Run", ErrIncomplete))
	}
	out, err := h.Run(ctx, input)
	if err != nil {
		return paas.Proof{}, err
	}
	return paas.Proof{Backend: paas.BackendNative, PublicValues: out}, nil
}
