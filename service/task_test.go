package service

import (
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
)

// A queued task costs the cache its task and nothing more: the size is what a backlog of a
// million tasks multiplies.
func TestAQueuedTaskIsSmallAndHoldsNoExtra(t *testing.T) {
	assert.LessOrEqual(t, unsafe.Sizeof(task{}), uintptr(192))
	rec := paas.TaskRecord{ID: paas.NewTaskID(), Key: "k", Backend: paas.BackendNative, State: paas.Pending, Version: 1, CreatedAt: time.Now()}
	assert.Nil(t, newTask(rec).x)
}

// set and record are each other's inverse, but for UpdatedAt, which each write sets anew.
func TestTaskHoldsEveryFieldOfItsRecord(t *testing.T) {
	now := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	full := paas.TaskRecord{
		ID: paas.NewTaskID(), Seq: 7, Version: 3, Key: "key", RoutingKey: "rk", Backend: paas.BackendNative,
		Program: []byte("p"), Weight: 2, Priority: -4, DependsOn: []paas.TaskID{paas.NewTaskID()},
		Timeout: time.Minute, NoTimeout: true, State: paas.Retrying, Attempts: 3, Restarts: 1,
		Interruptions: 2, Runs: 6, Checkpoint: []byte("cp"), LastError: "boom",
		FailedDependency: paas.NewTaskID(), FailedDependencyState: paas.Cancelled,
		NextAttemptAt: now.Add(time.Second), WaitingSince: now.Add(-time.Hour), CreatedAt: now,
	}
	v := reflect.ValueOf(full)
	for i := range v.NumField() {
		if name := v.Type().Field(i).Name; name != "UpdatedAt" {
			require.False(t, v.Field(i).IsZero(), "the test sets every field; %s is zero", name)
		}
	}
	tk := newTask(full)
	assert.Equal(t, full, tk.record())

	// Back to a record without the rare fields: they are gone, not left over.
	plain := full
	plain.DependsOn, plain.Restarts, plain.Interruptions, plain.Checkpoint, plain.LastError = nil, 0, 0, nil, ""
	plain.FailedDependency, plain.FailedDependencyState = paas.TaskID{}, 0
	plain.NextAttemptAt, plain.WaitingSince = time.Time{}, time.Time{}
	tk.set(plain)
	require.NotNil(t, tk.x)
	assert.Equal(t, plain, tk.record())
	assert.Equal(t, none, extra{}, "what a task without extra reads stays zero")
}
