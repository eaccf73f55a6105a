package service_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/service"
	"github.com/zkpaas/paas/store/bolt"
)

// The crash test runs a prover node in a child process (this test binary, re-executed), kills
// it with SIGKILL at random moments, restarts it each time, and checks at the end that nothing
// accepted was lost.

const (
	crashChildEnv = "PAAS_CRASH_CHILD_DB" // set in the child: the path of its bolt file
	crashWorkers  = 4
)

// The size of the crash test; PAAS_CRASH_TASKS and PAAS_CRASH_KILLS make it a longer soak.
var (
	crashTasks = envInt("PAAS_CRASH_TASKS", 2000)
	crashKills = envInt("PAAS_CRASH_KILLS", 20)
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// crashProof is the proof of program n that the child stores: anyone can check it.
func crashProof(n int) []byte {
	sum := sha256.Sum256([]byte("proof of " + strconv.Itoa(n)))
	return sum[:]
}

// crashChild is the child's main. It submits every task (duplicates of tasks accepted before
// a kill are no-ops), prints "accepted N ID" for each, "computed ID" for each proof it computes
// and "proved ID" for each proof it stores,
// waits for all of them, then prints "done".
func crashChild(path string) int {
	store, err := bolt.Open(path, &bolt.Options{LockTimeout: 10 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open:", err)
		return 2
	}
	defer store.Close()
	out := &lockedWriter{w: os.Stdout}
	// The proof takes a few milliseconds of "work".
	host := handler.HostFunc[int](func(ctx context.Context, n int) (paas.Proof, error) {
		select {
		case <-time.After(time.Duration(1+n%4) * time.Millisecond):
		case <-ctx.Done():
			return paas.Proof{}, ctx.Err()
		}
		task, _ := paas.TaskFromContext(ctx)
		out.println("computed", task.ID.String())
		return paas.Proof{Receipt: crashProof(n)}, nil
	})
	prove := &handler.RemoteProofHandler[job, int]{
		Fetcher: handler.InputFetcherFunc[job, int](func(_ context.Context, j job) (int, error) {
			n, err := strconv.Atoi(j.Name)
			return n, paas.Permanent(err)
		}),
		Hosts: handler.HostMap[int]{paas.BackendNative: host},
		// The store reads proofs back, so a task killed after its proof was stored is not
		// proven again.
		Storer: printingStore{store, out},
	}
	// The default retry budget: a kill counts against MaxInterruptions, not MaxRetries, so
	// no task whose handler never fails may end Failed however often the node is killed.
	svc, err := service.New(paas.Config{
		Workers: map[paas.Backend]int64{paas.BackendNative: crashWorkers},
	}, store, map[paas.RoutingKey]handler.ProofHandler{"job": prove})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: new:", err)
		return 2
	}
	ctx := context.Background()
	if err := svc.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child: start:", err)
		return 2
	}
	defer svc.Stop(ctx)
	h := svc.Handle()
	ids := make([]paas.TaskID, crashTasks)
	var wg sync.WaitGroup
	errs := make(chan error, crashTasks)
	for w := range 8 {
		wg.Go(func() {
			for n := w; n < crashTasks; n += 8 {
				id, err := h.Submit(ctx, job{Name: strconv.Itoa(n)}, paas.BackendNative)
				if err != nil {
					errs <- err
					return
				}
				ids[n] = id
				out.println("accepted", strconv.Itoa(n), id.String())
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		fmt.Fprintln(os.Stderr, "child: submit:", err)
		return 2
	}
	for n, id := range ids {
		res, err := h.Wait(ctx, id)
		if err != nil || res.State != paas.Completed {
			fmt.Fprintf(os.Stderr, "child: task %d: %+v %v\n", n, res, err)
			return 2
		}
	}
	out.println("done")
	return 0
}

// printingStore is the bolt store that prints "proved ID" for each proof it has stored.
type printingStore struct {
	*bolt.Store
	out *lockedWriter
}

func (s printingStore) StoreProof(ctx context.Context, id paas.TaskID, p paas.Proof) error {
	if err := s.Store.StoreProof(ctx, id, p); err != nil {
		return err
	}
	s.out.println("proved", id.String())
	return nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) println(a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(l.w, a...)
}

// crashRun is what the parent saw of one child run.
type crashRun struct {
	accepted map[int]string // program -> task id
	proved   []string
	computed []string // proofs computed, stored or not
	done     bool
	killed   bool
}

// killAt says when to kill a child: once it has printed that many lines of the kind. The
// moment is chosen by the child's progress, not by a timer. The zero value never kills.
type killAt struct {
	kind  string // "accepted" or "proved"
	lines int
}

// runChild starts a child on path and reads its output, killing it with SIGKILL as kill says.
func runChild(t *testing.T, path string, kill killAt) crashRun {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())

	run := crashRun{accepted: map[int]string{}}
	sc := bufio.NewScanner(stdout)
	seen := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 && f[0] == kill.kind {
			seen++
		}
		switch {
		case len(f) == 3 && f[0] == "accepted":
			if n, err := strconv.Atoi(f[1]); err == nil {
				run.accepted[n] = f[2]
			}
		case len(f) == 2 && f[0] == "proved":
			run.proved = append(run.proved, f[1])
		case len(f) == 2 && f[0] == "computed":
			run.computed = append(run.computed, f[1])
		case len(f) == 1 && f[0] == "done":
			run.done = true
		}
		if kill.lines > 0 && seen == kill.lines {
			require.NoError(t, cmd.Process.Kill())
			run.killed = true
			_, _ = io.Copy(io.Discard, stdout) // what it wrote before dying; lines may be cut
			break
		}
	}
	err = cmd.Wait()
	if !run.killed {
		require.NoError(t, err, "child failed: %s", stderr.String())
	}
	return run
}

func TestCrashRecoveryLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test runs 20+ processes; it runs without -short")
	}
	path := filepath.Join(t.TempDir(), "paas.db")
	accepted := map[int]string{}
	provedCount, computedCount := map[string]int{}, map[string]int{}
	record := func(run crashRun) {
		for n, id := range run.accepted {
			if prev, ok := accepted[n]; ok {
				require.Equal(t, prev, id, "program %d got two task ids", n)
			}
			accepted[n] = id
		}
		for _, id := range run.proved {
			provedCount[id]++
		}
		for _, id := range run.computed {
			computedCount[id]++
		}
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	kills := 0
	for kills < crashKills {
		// Most kills come while tasks are being proven, after up to a fair share of the
		// proofs; one in four comes while the tasks are being submitted.
		kill := killAt{kind: "proved", lines: 1 + rng.IntN(crashTasks/crashKills)}
		if rng.IntN(4) == 0 {
			kill = killAt{kind: "accepted", lines: 1 + rng.IntN(crashTasks)}
		}
		run := runChild(t, path, kill)
		record(run)
		if run.killed {
			kills++
		}
	}
	final := runChild(t, path, killAt{})
	record(final)
	require.True(t, final.done)

	store, err := bolt.Open(path, nil)
	require.NoError(t, err)
	defer store.Close()
	ctx := context.Background()
	require.Len(t, accepted, crashTasks)
	lost, twice, computedTwice := 0, 0, 0
	for n, s := range accepted {
		id, err := paas.ParseTaskID(s)
		require.NoError(t, err)
		rec, err := store.Get(ctx, id)
		if !assert.NoError(t, err, "task %d", n) || !assert.Equal(t, paas.Completed, rec.State, "task %d", n) {
			lost++
			continue
		}
		proof, err := store.Proof(ctx, id)
		if !assert.NoError(t, err, "proof of task %d", n) || !assert.Equal(t, crashProof(n), proof.Receipt, "proof of task %d", n) {
			lost++
		}
		if provedCount[s] > 1 {
			twice++
		}
		if computedCount[s] > 1 {
			computedTwice++
		}
	}
	assert.Zero(t, lost)
	// A proof stored is never proven again: the handler reads it back first.
	assert.Zero(t, twice, "a task whose proof was stored was proven again")
	// Only a task that was running when a kill came may have been computed again.
	assert.LessOrEqual(t, computedTwice, kills*crashWorkers)
	t.Logf("%d tasks, %d kills: %d lost, none failed, %d proofs stored more than once, %d computed more than once (at most %d were running at the kills)",
		crashTasks, kills, lost, twice, computedTwice, kills*crashWorkers)
}
