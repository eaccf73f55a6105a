package bolt_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/store/bolt"
)

func ExampleOpen() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "bolt-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "tasks.db")

	store, err := bolt.Open(path, nil)
	if err != nil {
		panic(err)
	}
	now := time.Now()
	rec, err := store.Insert(ctx, paas.TaskRecord{
		ID:         paas.NewTaskID(),
		Key:        paas.KeyOf("fib", []byte(`{"n":10}`), paas.BackendSP1),
		RoutingKey: "fib",
		Backend:    paas.BackendSP1,
		Program:    []byte(`{"n":10}`),
		Weight:     1,
		State:      paas.Pending,
		CreatedAt:  now,
		UpdatedAt:  now,
	})
	if err != nil {
		panic(err)
	}
	// The same file keeps the proofs, when the store is a RemoteProofHandler's Storer.
	err = store.StoreProof(ctx, rec.ID, paas.Proof{Backend: paas.BackendSP1, Receipt: []byte("…"), PublicValues: []byte("55")})
	if err != nil {
		panic(err)
	}

	// While the store is open, nobody else may open its file.
	_, err = bolt.Open(path, &bolt.Options{LockTimeout: 10 * time.Millisecond})
	fmt.Println("second open locked out:", errors.Is(err, bolt.ErrLocked))

	if err := store.Close(); err != nil {
		panic(err)
	}

	// After a restart, the task is still there, waiting to be run, and so is the proof.
	store, err = bolt.Open(path, nil)
	if err != nil {
		panic(err)
	}
	defer store.Close()
	unfinished, err := store.Unfinished(ctx)
	if err != nil {
		panic(err)
	}
	proof, err := store.Proof(ctx, rec.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println("unfinished after reopen:", len(unfinished), unfinished[0].ID == rec.ID, unfinished[0].State)
	fmt.Println("proof public values:", string(proof.PublicValues))
	// Output:
	// second open locked out: true
	// unfinished after reopen: 1 true pending
	// proof public values: 55
}

func ExampleCheck() {
	dir, err := os.MkdirTemp("", "bolt-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "tasks.db")
	store, err := bolt.Open(path, nil)
	if err != nil {
		panic(err)
	}
	if err := store.Close(); err != nil {
		panic(err)
	}
	fmt.Println("sound:", bolt.Check(path) == nil)

	// Cut the file short, as a full disk or a careless copy might.
	if err := os.Truncate(path, 3*4096); err != nil {
		panic(err)
	}
	err = bolt.Check(path)
	damaged, ok := errors.AsType[*bolt.DamagedFileError](err)
	fmt.Println("damaged:", ok, damaged.Path == path)
	_, err = bolt.Open(path, nil)
	_, ok = errors.AsType[*bolt.DamagedFileError](err)
	fmt.Println("Open refuses it:", ok)
	// Output:
	// sound: true
	// damaged: true true
	// Open refuses it: true
}
