package postgres

import (
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/zkpaas/paas"
)

// columns are the columns of a task's row, in the order of recordArgs and scanRecord. The
// first four (id, seq, key, created_at) never change once inserted.
const columns = `id, seq, key, created_at, version, routing_key, backend, program, weight, priority,
	depends_on, timeout_ns, no_timeout, state, attempts, restarts, interruptions, runs,
	checkpoint, last_error, failed_dependency, failed_dependency_state, next_attempt_at,
	waiting_since, updated_at`

// insertArgs are the values of an insert: every column but seq, which the database assigns,
// in the order of columns.
func insertArgs(r *paas.TaskRecord) []any {
	return append([]any{uuidOf(r.ID), []byte(r.Key), r.CreatedAt}, mutableArgs(r)...)
}

// mutableArgs are the values of the columns that an update sets, from version on, in the
// order of columns.
func mutableArgs(r *paas.TaskRecord) []any {
	var deps []pgtype.UUID
	if r.DependsOn != nil {
		deps = make([]pgtype.UUID, len(r.DependsOn))
		for i, d := range r.DependsOn {
			deps[i] = uuidOf(d)
		}
	}
	failedDep := pgtype.UUID{Bytes: r.FailedDependency, Valid: !r.FailedDependency.IsZero()}
	return []any{
		int64(r.Version), string(r.RoutingKey), string(r.Backend), r.Program, r.Weight, r.Priority,
		deps, int64(r.Timeout), r.NoTimeout, int16(r.State), r.Attempts, r.Restarts, r.Interruptions, r.Runs,
		r.Checkpoint, r.LastError, failedDep, int16(r.FailedDependencyState), timeOrNull(r.NextAttemptAt),
		timeOrNull(r.WaitingSince), r.UpdatedAt,
	}
}

// scanRecord reads a row of columns.
func scanRecord(row pgx.Row) (paas.TaskRecord, error) {
	var (
		r                         paas.TaskRecord
		id, failedDep             pgtype.UUID
		seq, version, timeout     int64
		key                       []byte
		routingKey, backend       string
		deps                      []pgtype.UUID
		state, failedState        int16
		nextAttempt, waitingSince pgtype.Timestamptz
	)
	err := row.Scan(&id, &seq, &key, &r.CreatedAt, &version, &routingKey, &backend, &r.Program,
		&r.Weight, &r.Priority, &deps, &timeout, &r.NoTimeout, &state, &r.Attempts, &r.Restarts,
		&r.Interruptions, &r.Runs, &r.Checkpoint, &r.LastError, &failedDep, &failedState,
		&nextAttempt, &waitingSince, &r.UpdatedAt)
	if err != nil {
		return paas.TaskRecord{}, err
	}
	r.ID, r.Seq, r.Version, r.Key = id.Bytes, uint64(seq), uint64(version), paas.TaskKey(key)
	r.RoutingKey, r.Backend, r.Timeout = paas.RoutingKey(routingKey), paas.Backend(backend), time.Duration(timeout)
	r.State, r.FailedDependencyState = paas.TaskState(state), paas.TaskState(failedState)
	if deps != nil {
		r.DependsOn = make([]paas.TaskID, len(deps))
		for i, d := range deps {
			r.DependsOn[i] = d.Bytes
		}
	}
	if failedDep.Valid {
		r.FailedDependency = failedDep.Bytes
	}
	if nextAttempt.Valid {
		r.NextAttemptAt = nextAttempt.Time
	}
	if waitingSince.Valid {
		r.WaitingSince = waitingSince.Time
	}
	return r, nil
}

func uuidOf(id paas.TaskID) pgtype.UUID { return pgtype.UUID{Bytes: id, Valid: true} }

// timeOrNull is t, or NULL for the zero time.
func timeOrNull(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}
