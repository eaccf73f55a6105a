package exechost_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler/exechost"
)

// A prover program is any command that reads its input and writes its proof. Here a shell
// stands in for an SP1 or Risc0 host program; exit code 2 is its way of rejecting an input,
// which no retry can fix.
func ExampleHost() {
	prover := &exechost.Host[[]byte]{
		Path: "/bin/sh",
		Args: []string{"-c", `read -r block; [ "$block" = bad ] && { echo "guest rejected $block" >&2; exit 2; }; printf 'proof of %s' "$block"`},
		Env:  []string{"SP1_PROVER=cpu"}, // what an SP1 host program reads
		Exit: func(e *exechost.ExitError) error {
			if e.Code == 2 {
				return paas.Permanent(e)
			}
			return e
		},
	}
	proof, err := prover.Prove(context.Background(), []byte("block 7\n"))
	fmt.Printf("%s, %v\n", proof.Receipt, err)

	_, err = prover.Prove(context.Background(), []byte("bad\n"))
	_, permanent := errors.AsType[*paas.PermanentError](err)
	fmt.Println("permanent:", permanent)
	fmt.Println(err)
	// Output:
	// proof of block 7, <nil>
	// permanent: true
	// permanent: exechost: /bin/sh: exit status 2: guest rejected bad
}
