// Package postgres provides Store, a paas.TaskStore on PostgreSQL, for nodes that keep their
// tasks in a database that operators already run, and that several nodes can share.
//
//	store, err := postgres.Open(ctx, "postgres://paas@db.internal:5432/provers", nil)
//	...
//	defer store.Close()
//	svc, err := service.New(cfg, store, handlers)
//
// The store keeps its tables in a schema of its own (Options.Schema, "paas" by default), which
// it creates and upgrades itself on Open: the migrations are numbered, applied in one
// transaction under an advisory lock, and recorded in the schema's migrations table, so that
// nodes starting at once on one database migrate one after the other, and a node older than
// the schema refuses to run (ErrSchemaTooNew).
//
// Every method returns once its transaction has committed: as durable as the server's
// settings make a commit (with the defaults, fsync and synchronous_commit on, it is on disk).
// WriteBatch sends a batch's statements in one round trip and commits them in one
// transaction, so that the service's group commit pays for one commit per batch.
//
// Times are kept at PostgreSQL's precision, the microsecond.
//
// The tables: tasks (a row per task, its key unique, seq its submission order, indexed for
// the unfinished tasks), proofs (a row per task with a proof) and migrations. The files of
// the package: postgres.go (Open, New, Close), migrate.go and migrations/ (the schema),
// record.go (a record's columns), tasks.go (the TaskStore methods), batch.go (WriteBatch),
// prune.go and proofs.go.
package postgres
