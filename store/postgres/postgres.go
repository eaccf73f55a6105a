package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/zkpaas/paas"
)

// Store is a paas.TaskStore and paas.BatchStore on PostgreSQL, and a paas.ProofStorer and
// paas.ProofReader of the proofs of handlers. It is safe for concurrent use, by one process
// or by several on one database.
type Store struct {
	pool   *pgxpool.Pool
	owned  bool // Close closes the pool: Open made it
	schema string
	q      queries
	closed atomic.Bool
}

var (
	_ paas.BatchStore  = (*Store)(nil)
	_ paas.ProofStorer = (*Store)(nil)
	_ paas.ProofReader = (*Store)(nil)
)

// Options are the settings of a Store. The zero value is usable.
type Options struct {
	// Schema is the PostgreSQL schema that holds the store's tables; it is created if it does
	// not exist. Nodes that share tasks use the same schema; a database may hold several
	// independent stores in schemas of their own. Default: DefaultSchema.
	Schema string
}

// DefaultSchema is the schema of a store whose Options do not name one.
const DefaultSchema = "paas"

// schemaName is what a Schema may be: a plain lower-case identifier, which needs no quoting
// in psql or in an operator's queries.
var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// ErrInvalidSchema is returned by Open and New for a Schema that is not a plain lower-case
// identifier of at most 63 characters.
var ErrInvalidSchema = errors.New("postgres: invalid schema name")

// Open connects to the database at url (a PostgreSQL URL or key=value connection string, as
// pgxpool.ParseConfig reads it), creates or upgrades the schema, and returns a store that
// owns its connection pool: Close closes it.
func Open(ctx context.Context, url string, opts *Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	s, err := New(ctx, pool, opts)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

// New returns a store on pool, after creating or upgrading the schema. Several nodes may call
// it at once on one database: they migrate one after the other, under an advisory lock. The
// pool stays the caller's; Close does not close it.
func New(ctx context.Context, pool *pgxpool.Pool, opts *Options) (*Store, error) {
	if pool == nil {
		return nil, errors.New("postgres: nil pool")
	}
	schema := DefaultSchema
	if opts != nil && opts.Schema != "" {
		schema = opts.Schema
	}
	if !schemaName.MatchString(schema) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidSchema, schema)
	}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return migrate(ctx, tx, schema) })
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate schema %s: %w", schema, err)
	}
	return &Store{pool: pool, schema: schema, q: newQueries(schema)}, nil
}

// Schema returns the schema that holds the store's tables.
func (s *Store) Schema() string { return s.schema }

// Close closes the connection pool if Open made it, waiting for the connections in use to be
// released. Calls after Close fail with paas.ErrStoreClosed. Close is idempotent and returns nil;
// its error is that of io.Closer.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.owned {
		s.pool.Close()
	}
	return nil
}

// ready returns why a call cannot begin: its ctx has ended, or the store is closed.
func (s *Store) ready(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return paas.ErrStoreClosed
	}
	return nil
}
