package service_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/service"
	"github.com/zkpaas/paas/store/memory"
)

// One check tells a refusal of Submit's, which submitting again cannot fix, from a failure
// of the store.
func TestEverySubmitRefusalIsAnInvalidTaskAndAStoreFailureIsNot(t *testing.T) {
	f, fs, _ := faulty(t)
	bad := f.failed("bad")
	refusals := map[string]func() error{
		"backend without workers": func() error { _, err := f.h.Submit(f.ctx, job{Name: "a"}, paas.BackendRisc0); return err },
		"routing key without handler": func() error {
			_, err := f.h.Submit(f.ctx, orphan{}, paas.BackendNative)
			return err
		},
		"unencodable program": func() error {
			_, err := f.h.Submit(f.ctx, unencodable{C: make(chan int)}, paas.BackendNative)
			return err
		},
		"not valid UTF-8": func() error { _, err := f.h.Submit(f.ctx, job{Name: "\xff"}, paas.BackendNative); return err },
		"weight":          func() error { _, err := f.h.Submit(f.ctx, weightless{}, paas.BackendNative); return err },
		"negative timeout": func() error {
			_, err := f.h.Submit(f.ctx, job{Name: "t"}, paas.BackendNative, paas.Timeout(-1))
			return err
		},
		"unknown dependency": func() error {
			_, err := f.h.Submit(f.ctx, job{Name: "u"}, paas.BackendNative, paas.After(paas.NewTaskID()))
			return err
		},
		"failed dependency": func() error {
			_, err := f.h.Submit(f.ctx, job{Name: "d"}, paas.BackendNative, paas.After(bad))
			return err
		},
	}
	for name, submit := range refusals {
		assert.ErrorIs(t, submit(), paas.ErrInvalidTask, name)
	}
	_, err := f.h.Submit(f.ctx, job{Name: "d"}, paas.BackendNative, paas.After(bad))
	var dep *paas.DependencyError
	require.ErrorAs(t, err, &dep, "the dependency's error is still there to read")
	assert.Equal(t, bad, dep.ID)

	full := errors.New("no space left on device")
	fs.FailInserts(1, full)
	_, err = f.h.Submit(f.ctx, job{Name: "fine"}, paas.BackendNative)
	require.ErrorIs(t, err, full)
	assert.NotErrorIs(t, err, paas.ErrInvalidTask, "a store that fails is no bad input")
}

func TestSaveCheckpointOutsideItsAttemptIsRefused(t *testing.T) {
	f := start(t, nil)
	f.submit("a")
	a := f.gate.next(t)
	require.NoError(t, a.task.SaveCheckpoint(f.ctx, []byte("cp")))
	a.answer <- nil
	f.wait(a.task.ID)
	err := a.task.SaveCheckpoint(f.ctx, []byte("late"))
	assert.ErrorIs(t, err, paas.ErrCheckpointRefused, "the attempt has ended")
}

// A task unfinished in the store that this service has no handler for is not run here: Wait
// and Cancel say so with a typed error, rather than waiting for ever.
func TestWaitAndCancelOfATaskNotRunHereSaySo(t *testing.T) {
	store := memory.New()
	other, err := service.New(paas.Config{Workers: map[paas.Backend]int64{paas.BackendNative: 1}}, store,
		map[paas.RoutingKey]handler.ProofHandler{"other": newGate()})
	require.NoError(t, err)
	f := startOn(t, store)
	id := f.submit("a") // runs on f's gate; blocks there
	f.gate.next(t)
	require.ErrorIs(t, f.svc.Stop(canceled()), context.Canceled) // interrupted: Pending in the store
	require.NoError(t, other.Start(t.Context()))
	defer other.Stop(context.Background())
	_, err = other.Handle().Wait(t.Context(), id)
	assert.ErrorIs(t, err, paas.ErrNotRunHere)
	assert.ErrorIs(t, other.Handle().Cancel(t.Context(), id), paas.ErrNotRunHere)
}
