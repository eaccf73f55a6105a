package handler

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/zkpaas/paas"
)

var (
	// ErrNoHost is wrapped by the error of HostMap.Host for a backend without a host, and of
	// a RemoteProofHandler whose HostResolver gave none. RemoteProofHandler fails such a task
	// permanently.
	ErrNoHost = errors.New("handler: no host for backend")
	// ErrIncomplete is wrapped by the errors of a handler or host that is missing a required
	// field. It is a configuration error, so RemoteProofHandler fails such a task permanently.
	ErrIncomplete = errors.New("handler: incomplete configuration")
)

// RemoteProofHandler is a ProofHandler for programs of type P proven on inputs of type I. For
// each task it decodes the program, resolves the host for the task's backend, fetches the
// input, proves it on the host and stores the proof under the task ID.
//
// If its Storer can read proofs back (it is a paas.ProofReader, as the stores of package store
// are), it first looks for a proof already stored for the task, and if there is one it
// succeeds without proving again: a crash between storing the proof and recording the task
// Completed then costs nothing. A proof that cannot be read back (a damaged record) is proven
// again and stored over.
//
// It does not log. Errors are returned wrapped with the step that failed, so that a
// paas.Permanent or paas.RetryAfter from a fetcher, host or storer reaches the service intact.
// Decoding and resolving errors are made permanent, since the same task would fail them again.
//
// A RemoteProofHandler is safe for concurrent use if its fields are.
type RemoteProofHandler[P, I any] struct {
	// Fetcher fetches the input of a program. Required.
	Fetcher InputFetcher[P, I]
	// Hosts proves the tasks of each backend. Required unless Resolver is set.
	Hosts HostMap[I]
	// Resolver, if set, picks the host for each program and backend instead of Hosts.
	Resolver HostResolver[P, I]
	// Storer stores the proofs, under the task ids. Required.
	Storer paas.ProofStorer
	// Codec decodes task.Program. It must be the service's Codec; nil means paas.JSONCodec,
	// the service's default.
	Codec paas.Codec
}

var _ ProofHandler = (*RemoteProofHandler[struct{}, struct{}])(nil)

// Validate reports an error wrapping ErrIncomplete that names every missing field, or nil.
// Call it when building the handler to catch mistakes before the first task.
func (h *RemoteProofHandler[P, I]) Validate() error {
	var missing []string
	if h.Fetcher == nil {
		missing = append(missing, "Fetcher")
	}
	if h.Hosts == nil && h.Resolver == nil {
		missing = append(missing, "Hosts (or a Resolver)")
	}
	if h.Storer == nil {
		missing = append(missing, "Storer")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: RemoteProofHandler has no %s", ErrIncomplete, strings.Join(missing, ", "))
	}
	return nil
}

// Prove implements ProofHandler.
func (h *RemoteProofHandler[P, I]) Prove(ctx context.Context, task paas.Task) error {
	// A misconfigured handler fails every task the same way; failing permanently beats
	// panicking on a nil field or burning the retry budget.
	if err := h.Validate(); err != nil {
		return paas.Permanent(err)
	}
	if r, ok := h.Storer.(paas.ProofReader); ok {
		_, err := r.Proof(ctx, task.ID)
		if err == nil {
			return nil // proven by an earlier attempt that did not live to record it
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	codec := h.Codec
	if codec == nil {
		codec = paas.JSONCodec{}
	}
	var program P
	if err := codec.Unmarshal(task.Program, &program); err != nil {
		return permanent(fmt.Errorf("handler: decode program: %w", err))
	}
	host, err := h.host(program, task.Backend)
	if err != nil {
		return permanent(fmt.Errorf("handler: resolve host: %w", err))
	}
	if host == nil {
		return paas.Permanent(fmt.Errorf("handler: resolve host: %w %q", ErrNoHost, task.Backend))
	}

	// Fetchers and hosts should honour ctx themselves; checking between steps keeps a
	// cancelled task from starting an expensive proof when one of them does not.
	if err := ctx.Err(); err != nil {
		return err
	}
	input, err := h.Fetcher.FetchInput(ctx, program)
	if err != nil {
		return fmt.Errorf("handler: fetch input: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	proof, err := host.Prove(ctx, input)
	if err != nil {
		return fmt.Errorf("handler: prove on %s: %w", task.Backend, err)
	}
	if proof.Backend == "" {
		// Let simple hosts leave it out: the resolver chose them for this backend.
		proof.Backend = task.Backend
	}
	if err := h.Storer.StoreProof(ctx, task.ID, proof); err != nil {
		return fmt.Errorf("handler: store proof: %w", err)
	}
	return nil
}

// host returns the host that proves program on backend: the Resolver's choice, if there is a
// Resolver, else the backend's host in Hosts.
func (h *RemoteProofHandler[P, I]) host(program P, backend paas.Backend) (Host[I], error) {
	if h.Resolver != nil {
		return h.Resolver.ResolveHost(program, backend)
	}
	return h.Hosts.Host(backend)
}

// permanent is paas.Permanent that does not wrap an error that is already permanent, which
// would only repeat "permanent: " in the message.
func permanent(err error) error {
	if _, ok := errors.AsType[*paas.PermanentError](err); ok {
		return err
	}
	return paas.Permanent(err)
}
