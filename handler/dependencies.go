package handler

import (
	"context"
	"errors"
	"fmt"

	"github.com/zkpaas/paas"
)

// ErrNoTask is returned by DependencyProofs for a context that carries no task.
var ErrNoTask = errors.New("handler: the context carries no task")

// DependencyProofs returns the proofs of the dependencies of the task that ctx carries, in the
// order of its DependsOn: what a checkpoint proof aggregates, for example. The service gives
// every handler such a context, so an InputFetcher can call it. A dependency always Completed
// before the task started, so a missing proof is an error of the proof store's.
func DependencyProofs(ctx context.Context, r paas.ProofReader) ([]paas.Proof, error) {
	task, ok := paas.TaskFromContext(ctx)
	if !ok {
		return nil, ErrNoTask
	}
	proofs := make([]paas.Proof, 0, len(task.DependsOn))
	for _, dep := range task.DependsOn {
		p, err := r.Proof(ctx, dep)
		if err != nil {
			return nil, fmt.Errorf("handler: proof of dependency %s: %w", dep, err)
		}
		proofs = append(proofs, p)
	}
	return proofs, nil
}
