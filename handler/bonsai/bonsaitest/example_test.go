package bonsaitest_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/zkpaas/paas/handler/bonsai"
	"github.com/zkpaas/paas/handler/bonsai/bonsaitest"
)

// A session held RUNNING until the test lets it end: how a test catches a node in the middle
// of a proof, to kill it, cancel its task or stop its service.
func ExampleServer() {
	srv := bonsaitest.New(bonsaitest.WithScript(bonsaitest.HeldScript()))
	defer srv.Close()
	ctx := context.Background()

	host := &bonsai.Host[[]byte]{
		Client:       &bonsai.Client{BaseURL: srv.URL, APIKey: srv.APIKey, Version: srv.Version},
		ImageID:      "6a0f2c8e3b1d4f5a7c9e0b2d4f6a8c0e1b3d5f7a9c0e2b4d6f8a0c1e3b5d7f9a",
		ELF:          []byte("\x7fELF..."),
		PollInterval: 1,
	}
	done := make(chan []byte)
	go func() {
		proof, err := host.Prove(ctx, []byte("block 12"))
		if err != nil {
			fmt.Println(err)
		}
		done <- proof.Receipt
	}()

	// Wait for the session to be created and polled, instead of sleeping.
	c, err := srv.WaitFor(ctx, func(c bonsaitest.Counts) bool { return c.StatusPolls > 0 })
	if err != nil {
		fmt.Println(err)
		return
	}
	session := srv.Sessions()[0]
	fmt.Println(c.SessionsCreated, "session,", session.Status)

	if err := srv.Release(session.ID); err != nil {
		fmt.Println(err)
		return
	}
	receipt := <-done
	fmt.Println(bytes.Equal(receipt, bonsaitest.Receipt(host.ImageID, []byte("block 12"))))
	fmt.Println("header failures:", srv.Counts().HeaderFailures)
	// Output:
	// 1 session, RUNNING
	// true
	// header failures: 0
}
