package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/zkpaas/paas"
)

// WriteBatch implements paas.BatchStore: the writes go to the server in one round trip and
// commit in one transaction. An update of an unknown task, a fenced update on a changed
// version and an insert whose id is taken under another key fail alone; a write whose data
// the server refuses (text that is not UTF-8, say) would abort the transaction, so the
// writes are then applied again one transaction each, for that one to fail alone. If the
// transaction fails otherwise (ctx ends, the connection drops), every write fails with its
// error and none is applied.
func (s *Store) WriteBatch(ctx context.Context, writes []paas.Write) []paas.WriteResult {
	res := make([]paas.WriteResult, len(writes))
	err := s.ready(ctx)
	if err == nil {
		err = s.writeBatch(ctx, writes, res, nil)
	}
	if err != nil && refused(err) && len(writes) > 1 {
		for i := range writes {
			if err := s.writeBatch(ctx, writes[i:i+1], res[i:i+1], nil); err != nil {
				res[i] = paas.WriteResult{Err: writeError(&writes[i], err)}
			}
		}
		return res
	}
	if err != nil {
		for i := range res {
			res[i] = paas.WriteResult{Err: writeError(&writes[i], err)}
		}
	}
	return res
}

// writeBatch applies writes in one transaction and sets their results. If found is not nil,
// it is given the stored task of each insert whose key was taken, as read in the transaction.
func (s *Store) writeBatch(ctx context.Context, writes []paas.Write, res []paas.WriteResult, found func(i int, rec paas.TaskRecord)) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		clear(res)
		for _, w := range writes {
			if len(w.Record.DependsOn) > 0 && !w.Record.State.Final() {
				// Keeps Prune from deleting a dependency of this task meanwhile.
				if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock_shared($1)", s.q.pruneLock); err != nil {
					return err
				}
				break
			}
		}
		var b pgx.Batch
		for i := range writes {
			r := &writes[i].Record
			if writes[i].Insert {
				b.Queue(s.q.insert, insertArgs(r)...)
			} else {
				b.Queue(s.q.update, append(mutableArgs(r), uuidOf(r.ID))...)
			}
		}
		br := tx.SendBatch(ctx, &b)
		var missed []int // the writes that changed nothing, to be explained
		for i := range writes {
			if writes[i].Insert {
				var seq int64
				err := br.QueryRow().Scan(&seq)
				if errors.Is(err, pgx.ErrNoRows) {
					missed = append(missed, i)
					continue
				}
				if err != nil {
					br.Close()
					return err
				}
				res[i] = paas.WriteResult{ID: writes[i].Record.ID, Seq: uint64(seq)}
				continue
			}
			tag, err := br.Exec()
			if err != nil {
				br.Close()
				return err
			}
			if tag.RowsAffected() == 0 {
				missed = append(missed, i)
			}
		}
		if err := br.Close(); err != nil {
			return err
		}
		for _, i := range missed {
			r, stored, err := s.explain(ctx, tx, &writes[i])
			if err != nil {
				return err
			}
			res[i] = r
			if found != nil && r.Err == nil && r.ID != writes[i].Record.ID {
				found(i, stored)
			}
		}
		return nil
	})
}

// explain returns the result of a write that changed nothing: for an insert, the task that
// holds its key (stored); for an update, why it did not apply. Its error is the
// transaction's.
func (s *Store) explain(ctx context.Context, tx pgx.Tx, w *paas.Write) (res paas.WriteResult, stored paas.TaskRecord, err error) {
	r := &w.Record
	if !w.Insert {
		var version int64
		err := tx.QueryRow(ctx, s.q.versionOf, uuidOf(r.ID)).Scan(&version)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return paas.WriteResult{Err: fmt.Errorf("postgres: update task %s: %w", r.ID, paas.ErrTaskNotFound)}, stored, nil
		case err != nil:
			return res, stored, err
		}
		return paas.WriteResult{Err: fmt.Errorf("postgres: update task %s to version %d: stored version is %d: %w",
			r.ID, r.Version, version, paas.ErrConflict)}, stored, nil
	}
	// The key or the id is taken. The task that holds the key may be pruned between the
	// insert and the look-up; then the insert is tried again, and makes the task.
	for range 3 {
		stored, err = scanRecord(tx.QueryRow(ctx, s.q.getByKey, []byte(r.Key)))
		if err == nil {
			return paas.WriteResult{ID: stored.ID, Seq: stored.Seq}, stored, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return res, stored, err
		}
		var version, seq int64
		err = tx.QueryRow(ctx, s.q.versionOf, uuidOf(r.ID)).Scan(&version)
		if err == nil {
			return paas.WriteResult{Err: fmt.Errorf("postgres: insert task %s: id already stored under another key", r.ID)}, stored, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return res, stored, err
		}
		err = tx.QueryRow(ctx, s.q.insert, insertArgs(r)...).Scan(&seq)
		if err == nil {
			return paas.WriteResult{ID: r.ID, Seq: uint64(seq)}, stored, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return res, stored, err
		}
	}
	return paas.WriteResult{Err: fmt.Errorf("postgres: insert task %s: its key was taken and freed three times over", r.ID)}, stored, nil
}

// refused reports whether err is the server refusing a statement's data: a data exception
// (class 22), an integrity constraint (23) or a program limit (54), which abort the
// transaction but concern one write only.
func refused(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || len(pgErr.Code) < 2 {
		return false
	}
	switch pgErr.Code[:2] {
	case "22", "23", "54":
		return true
	}
	return false
}

// writeError wraps err, the failure of a transaction, as the error of write w.
func writeError(w *paas.Write, err error) error {
	if w.Insert {
		return fmt.Errorf("postgres: insert task %s: %w", w.Record.ID, err)
	}
	return fmt.Errorf("postgres: update task %s: %w", w.Record.ID, err)
}
