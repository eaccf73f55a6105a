package bonsai_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/handler/bonsai"
	"github.com/zkpaas/paas/handler/bonsai/bonsaitest"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(nodeDBEnv); path != "" {
		os.Exit(node(path)) // this process is a node of TestANodeKilledWhileItsSessionRunsResumesThatSession
	}
	goleak.VerifyTestMain(m)
}

// The guest of these tests.
var (
	guestELF = []byte("\x7fELF the guest of the tests")
	imageID  = func() string { sum := sha256.Sum256(guestELF); return hex.EncodeToString(sum[:]) }()
)

// waitLong bounds every wait of a test for something that should come soon.
const waitLong = 10 * time.Second

// bounded returns a context that ends after waitLong, so that a test that goes wrong fails
// instead of hanging. The end of such a context reads as a user's Cancel to handlertest.
func bounded(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), waitLong)
	t.Cleanup(cancel)
	return ctx
}

func newServer(t *testing.T, opts ...bonsaitest.Option) *bonsaitest.Server {
	t.Helper()
	srv := bonsaitest.New(opts...)
	t.Cleanup(srv.Close)
	return srv
}

// newClient returns a client of srv that retries quickly.
func newClient(srv *bonsaitest.Server) *bonsai.Client {
	return &bonsai.Client{
		BaseURL: srv.URL, APIKey: srv.APIKey, Version: srv.Version,
		Retry: bonsai.Retry{BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond},
	}
}

// newHost returns a host proving the guest on srv, polling often.
func newHost(srv *bonsaitest.Server) *bonsai.Host[[]byte] {
	return &bonsai.Host[[]byte]{Client: newClient(srv), ImageID: imageID, ELF: guestELF, PollInterval: time.Millisecond}
}

// waitFor waits until cond holds for srv's counts, failing the test after waitLong.
func waitFor(t *testing.T, srv *bonsaitest.Server, what string, cond func(bonsaitest.Counts) bool) bonsaitest.Counts {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitLong)
	defer cancel()
	c, err := srv.WaitFor(ctx, cond)
	if err != nil {
		t.Fatalf("waiting for %s: %v; counts %+v", what, err, c)
	}
	return c
}

func polled(c bonsaitest.Counts) bool { return c.StatusPolls >= 1 }

// block is the program of these tests: the input of block N is "block N".
type block struct{ N int }

func (block) RoutingKey() paas.RoutingKey { return "block" }

func (b block) input() []byte { return fmt.Appendf(nil, "block %d", b.N) }

// proofHandler proves blocks on host and stores their proofs in proofs.
func proofHandler(host handler.Host[[]byte], proofs paas.ProofStorer) *handler.RemoteProofHandler[block, []byte] {
	return &handler.RemoteProofHandler[block, []byte]{
		Fetcher: handler.InputFetcherFunc[block, []byte](func(_ context.Context, b block) ([]byte, error) {
			return b.input(), nil
		}),
		Hosts:  handler.HostMap[[]byte]{paas.BackendRisc0: host},
		Storer: proofs,
	}
}

// checkpoints records what an attempt saves, as the service's SaveCheckpoint would store it.
type checkpoints struct {
	mu    sync.Mutex
	saved [][]byte
	// before, if set, runs before a checkpoint is saved; its error refuses the save.
	before func() error
}

func (c *checkpoints) save(_ context.Context, b []byte) error {
	if c.before != nil {
		if err := c.before(); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.saved = append(c.saved, append([]byte(nil), b...))
	return nil
}

func (c *checkpoints) list() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.saved
}

// inTask returns ctx carrying a task with checkpoint, whose SaveCheckpoint is saved's.
func inTask(ctx context.Context, checkpoint []byte, saved *checkpoints) context.Context {
	return paas.ContextWithTask(ctx, paas.Task{
		ID: paas.NewTaskID(), RoutingKey: "block", Backend: paas.BackendRisc0, Attempt: 1,
		Checkpoint: checkpoint, SaveCheckpoint: saved.save,
	})
}
