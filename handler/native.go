package handler

import (
	"context"
	"fmt"

	"github.com/zkpaas/paas"
)

// NativeHost is a Host for paas.BackendNative: it runs the program natively and returns its
// output without proving it. Use it in tests, or to check a program's output before paying for
// a proof.
type NativeHost[I any] struct {
	// Run executes the program on input and returns its public output.
	Run func(ctx context.Context, input I) ([]byte, error)
}

var _ Host[struct{}] = NativeHost[struct{}]{}

// Prove implements Host. The returned Proof has Backend paas.BackendNative, no Receipt, and
// Run's output as PublicValues. Errors from Run are returned as they are; a nil Run is a
// configuration error wrapping ErrIncomplete, and permanent.
func (h NativeHost[I]) Prove(ctx context.Context, input I) (Proof, error) {
	if h.Run == nil {
		return Proof{}, paas.Permanent(fmt.Errorf("%w: NativeHost has no Run", ErrIncomplete))
	}
	out, err := h.Run(ctx, input)
	if err != nil {
		return Proof{}, err
	}
	return Proof{Backend: paas.BackendNative, PublicValues: out}, nil
}
