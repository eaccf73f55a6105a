package memory_test

import (
	"context"
	"fmt"
	"time"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/store/memory"
)

func ExampleNew() {
	ctx := context.Background()
	s := memory.New()

	// newRecord builds what the service would insert on Submit: a new id each time, and a key
	// derived from the program, so submitting the same program twice yields the same key.
	newRecord := func(program string) paas.TaskRecord {
		now := time.Now()
		return paas.TaskRecord{
			ID:         paas.NewTaskID(),
			Key:        paas.KeyOf("fib", []byte(program), paas.BackendNative),
			RoutingKey: "fib",
			Backend:    paas.BackendNative,
			Program:    []byte(program),
			Weight:     1,
			State:      paas.Pending,
			CreatedAt:  now,
			UpdatedAt:  now,
		}
	}

	first, err := s.Insert(ctx, newRecord(`{"n":10}`))
	if err != nil {
		panic(err)
	}
	again := newRecord(`{"n":10}`)
	dup, err := s.Insert(ctx, again)
	if err != nil {
		panic(err)
	}
	fmt.Println("duplicate returns the first task:", dup.ID == first.ID && dup.ID != again.ID)

	other, err := s.Insert(ctx, newRecord(`{"n":20}`))
	if err != nil {
		panic(err)
	}
	other.State = paas.Completed
	if err := s.Update(ctx, other); err != nil {
		panic(err)
	}

	unfinished, err := s.Unfinished(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("stored:", s.Len())
	for _, rec := range unfinished {
		fmt.Println("unfinished:", string(rec.Program), rec.State, rec.ID == first.ID)
	}
	// Output:
	// duplicate returns the first task: true
	// stored: 2
	// unfinished: {"n":10} pending true
}
