package bonsai_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler/bonsai"
	"github.com/zkpaas/paas/handler/bonsai/bonsaitest"
)

// A Host proves against a fake Bonsai server here; against hosted Bonsai or a Bento, the
// Client would come from bonsai.ClientFromEnv, with BONSAI_API_URL and BONSAI_API_KEY set.
func Example() {
	srv := bonsaitest.New(bonsaitest.WithScriptFunc(func(s bonsaitest.SessionInfo) bonsaitest.Script {
		if bytes.Equal(s.Input, []byte("block 13")) {
			return bonsaitest.EndScript(bonsaitest.Failed, "Guest panicked: block 13 has no parent")
		}
		return bonsaitest.DefaultScript()
	}))
	defer srv.Close()

	risc0 := &bonsai.Host[[]byte]{
		Client:  &bonsai.Client{BaseURL: srv.URL, APIKey: srv.APIKey, Version: srv.Version},
		ImageID: "6a0f2c8e3b1d4f5a7c9e0b2d4f6a8c0e1b3d5f7a9c0e2b4d6f8a0c1e3b5d7f9a",
		ELF:     []byte("\x7fELF..."), // the guest program, uploaded only if the server lacks it
		// A second is the default; the fake answers at once.
		PollInterval: 1,
	}
	ctx := context.Background()
	proof, err := risc0.Prove(ctx, []byte("block 12"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(proof.Backend, bytes.Equal(proof.Receipt, bonsaitest.Receipt(risc0.ImageID, []byte("block 12"))))

	_, err = risc0.Prove(ctx, []byte("block 13"))
	_, permanent := errors.AsType[*paas.PermanentError](err)
	fmt.Println("permanent:", permanent)

	c := srv.Counts()
	fmt.Println("sessions:", c.SessionsCreated, "image uploads:", c.ImageUploads, "header failures:", c.HeaderFailures)
	// Output:
	// risc0 true
	// permanent: true
	// sessions: 2 image uploads: 1 header failures: 0
}
