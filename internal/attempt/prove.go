package attempt

import (
	"context"
	"runtime/debug"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
)

// Prove runs one attempt, turning a panic into a *paas.PanicError.
func Prove(ctx context.Context, h handler.ProofHandler, task paas.Task) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &paas.PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return h.Prove(ctx, task)
}
