package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Prune implements paas.TaskStore. It deletes, in one statement, every task in a final state
// last updated before the given time on which no unfinished task depends, which frees its
// key; the proofs of the tasks it deletes are kept (see DeleteProof).
//
// A write that leaves a task unfinished with dependencies holds an advisory lock of the
// schema shared until it commits, and Prune holds it exclusive: so its statement sees every
// dependent committed before it, and none commits while it runs. Other writes do not wait.
func (s *Store) Prune(ctx context.Context, before time.Time) (int, error) {
	if err := s.ready(ctx); err != nil {
		return 0, err
	}
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", s.q.pruneLock); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, s.q.prune, before)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: prune: %w", err)
	}
	return int(n), nil
}
