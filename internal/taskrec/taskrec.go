// Package taskrec builds the task records of the project's own tests: one builder, so that a
// field added to paas.TaskRecord is given its value in one place.
package taskrec

import (
	"time"

	"github.com/zkpaas/paas"
)

// New returns a valid new task record, as the service would hand it to TaskStore.Insert:
// Pending, with a fresh ID, weight 1, the key of its routing key, program and backend, and
// CreatedAt and UpdatedAt at. The other fields are zero, as for a task submitted without
// options.
func New(rk paas.RoutingKey, program []byte, backend paas.Backend, at time.Time) paas.TaskRecord {
	return paas.TaskRecord{
		ID:         paas.NewTaskID(),
		Key:        paas.KeyOf(rk, program, backend),
		RoutingKey: rk,
		Backend:    backend,
		Program:    program,
		Weight:     1,
		State:      paas.Pending,
		CreatedAt:  at,
		UpdatedAt:  at,
	}
}
