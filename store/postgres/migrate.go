package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one step of the schema: the file migrations/NNNN_name.sql, whose {{schema}}
// stands for the store's schema.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the steps of the schema in order. Their versions are 1, 2, ... without
// a gap: a file is never renumbered or changed once released, only added after the last.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for i, name := range names { // fs.Glob sorts them
		base := strings.TrimSuffix(path.Base(name), ".sql")
		num, label, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v != i+1 {
			return nil, fmt.Errorf("postgres: migration %s: want version %d", name, i+1)
		}
		b, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: label, sql: string(b)})
	}
	return ms, nil
}

// SchemaVersion is the version of the schema that this package creates and reads: the number
// of its migrations.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// ErrSchemaTooNew is returned by Open and New when the database's schema was migrated by a
// newer version of this package than the one running: a node must not write rows whose
// meaning it does not know. Upgrade the node.
var ErrSchemaTooNew = errors.New("postgres: the schema is newer than this version of paas")

// migrate brings the schema to the latest version. It runs in one transaction under an
// advisory lock of the schema, so that nodes starting at once migrate one after the other:
// the first applies what is missing, the others find nothing left to do. A migration that
// fails rolls back whole.
func migrate(ctx context.Context, db pgx.Tx, schema string) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	if _, err := db.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey("migrate", schema)); err != nil {
		return err
	}
	q := pgx.Identifier{schema}.Sanitize()
	if _, err := db.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+q); err != nil {
		return err
	}
	if _, err := db.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+q+`.migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return err
	}
	var current int
	if err := db.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+q+".migrations").Scan(&current); err != nil {
		return err
	}
	if current > len(ms) {
		return fmt.Errorf("%w: schema %s is at version %d, this paas knows %d", ErrSchemaTooNew, schema, current, len(ms))
	}
	for _, m := range ms[current:] {
		if _, err := db.Exec(ctx, strings.ReplaceAll(m.sql, "{{schema}}", q)); err != nil {
			return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
		}
		if _, err := db.Exec(ctx, "INSERT INTO "+q+".migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
			return err
		}
	}
	return nil
}

// lockKey is the key of the advisory lock named what for schema: locks of different schemas
// on one database do not contend.
func lockKey(what, schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("paas:" + what + ":" + schema))
	return int64(h.Sum64())
}
