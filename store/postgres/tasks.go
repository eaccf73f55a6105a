package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/zkpaas/paas"
)

// queries are the statements of a store, with its schema in them.
type queries struct {
	insert, update                 string
	get, getByKey, unfinished      string
	versionOf                      string
	prune                          string
	storeProof, proof, deleteProof string
	// pruneLock is the advisory lock that Prune takes exclusive, and writes that leave a
	// task unfinished with dependencies take shared: see Prune.
	pruneLock int64
}

func newQueries(schema string) queries {
	tasks := pgx.Identifier{schema, "tasks"}.Sanitize()
	proofs := pgx.Identifier{schema, "proofs"}.Sanitize()
	final := fmt.Sprintf("(%d, %d, %d)", paas.Completed, paas.Failed, paas.Cancelled)
	return queries{
		// ON CONFLICT DO NOTHING covers both the key and the id: an insert that returns no row
		// found one or the other taken, and the store looks which.
		insert: `INSERT INTO ` + tasks + ` (id, key, created_at, version, routing_key, backend, program,
			weight, priority, depends_on, timeout_ns, no_timeout, state, attempts, restarts, interruptions,
			runs, checkpoint, last_error, failed_dependency, failed_dependency_state, next_attempt_at,
			waiting_since, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
			$20, $21, $22, $23, $24)
			ON CONFLICT DO NOTHING RETURNING seq`,
		// $1 is the version, $25 the id; the version fences the update unless it is zero.
		update: `UPDATE ` + tasks + ` SET version = $1, routing_key = $2, backend = $3, program = $4,
			weight = $5, priority = $6, depends_on = $7, timeout_ns = $8, no_timeout = $9, state = $10,
			attempts = $11, restarts = $12, interruptions = $13, runs = $14, checkpoint = $15,
			last_error = $16, failed_dependency = $17, failed_dependency_state = $18,
			next_attempt_at = $19, waiting_since = $20, updated_at = $21
			WHERE id = $22 AND ($1 = 0 OR version = $1 - 1)`,
		get:        `SELECT ` + columns + ` FROM ` + tasks + ` WHERE id = $1`,
		getByKey:   `SELECT ` + columns + ` FROM ` + tasks + ` WHERE key = $1`,
		unfinished: `SELECT ` + columns + ` FROM ` + tasks + ` WHERE state NOT IN ` + final + ` ORDER BY seq`,
		versionOf:  `SELECT version FROM ` + tasks + ` WHERE id = $1`,
		prune: `DELETE FROM ` + tasks + ` t WHERE t.state IN ` + final + ` AND t.updated_at < $1
			AND NOT EXISTS (SELECT 1 FROM ` + tasks + ` u WHERE u.state NOT IN ` + final + `
				AND u.depends_on @> ARRAY[t.id])`,
		storeProof: `INSERT INTO ` + proofs + ` (task_id, backend, receipt, public_values) VALUES ($1, $2, $3, $4)
			ON CONFLICT (task_id) DO UPDATE SET backend = excluded.backend, receipt = excluded.receipt,
			public_values = excluded.public_values, stored_at = now()`,
		proof:       `SELECT backend, receipt, public_values FROM ` + proofs + ` WHERE task_id = $1`,
		deleteProof: `DELETE FROM ` + proofs + ` WHERE task_id = $1`,
		pruneLock:   lockKey("prune", schema),
	}
}

// Insert implements paas.TaskStore. It returns an error if a task with rec.ID but another key
// is stored, since storing rec would orphan that task's key.
func (s *Store) Insert(ctx context.Context, rec paas.TaskRecord) (paas.TaskRecord, error) {
	if err := s.ready(ctx); err != nil {
		return paas.TaskRecord{}, err
	}
	var res [1]paas.WriteResult
	var existing paas.TaskRecord
	err := s.writeBatch(ctx, []paas.Write{{Insert: true, Record: rec}}, res[:], func(_ int, stored paas.TaskRecord) { existing = stored })
	switch {
	case err != nil:
		return paas.TaskRecord{}, writeError(&paas.Write{Insert: true, Record: rec}, err)
	case res[0].Err != nil:
		return paas.TaskRecord{}, res[0].Err
	case res[0].ID != rec.ID:
		return existing, nil
	}
	rec.Seq = res[0].Seq
	return rec, nil
}

// Update implements paas.TaskStore. The stored Seq, Key and CreatedAt are kept whatever rec
// holds.
func (s *Store) Update(ctx context.Context, rec paas.TaskRecord) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	return s.WriteBatch(ctx, []paas.Write{{Record: rec}})[0].Err
}

// Get implements paas.TaskStore.
func (s *Store) Get(ctx context.Context, id paas.TaskID) (paas.TaskRecord, error) {
	if err := s.ready(ctx); err != nil {
		return paas.TaskRecord{}, err
	}
	rec, err := scanRecord(s.pool.QueryRow(ctx, s.q.get, uuidOf(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		return paas.TaskRecord{}, fmt.Errorf("postgres: get task %s: %w", id, paas.ErrTaskNotFound)
	}
	if err != nil {
		return paas.TaskRecord{}, fmt.Errorf("postgres: get task %s: %w", id, err)
	}
	return rec, nil
}

// GetByKey implements paas.TaskStore.
func (s *Store) GetByKey(ctx context.Context, key paas.TaskKey) (paas.TaskRecord, error) {
	if err := s.ready(ctx); err != nil {
		return paas.TaskRecord{}, err
	}
	rec, err := scanRecord(s.pool.QueryRow(ctx, s.q.getByKey, []byte(key)))
	if errors.Is(err, pgx.ErrNoRows) {
		return paas.TaskRecord{}, fmt.Errorf("postgres: get task of key %s: %w", key, paas.ErrTaskNotFound)
	}
	if err != nil {
		return paas.TaskRecord{}, fmt.Errorf("postgres: get task of key %s: %w", key, err)
	}
	return rec, nil
}

// Unfinished implements paas.TaskStore.
func (s *Store) Unfinished(ctx context.Context) ([]paas.TaskRecord, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, s.q.unfinished)
	if err != nil {
		return nil, fmt.Errorf("postgres: read unfinished tasks: %w", err)
	}
	recs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (paas.TaskRecord, error) { return scanRecord(row) })
	if err != nil {
		return nil, fmt.Errorf("postgres: read unfinished tasks: %w", err)
	}
	return recs, nil
}
