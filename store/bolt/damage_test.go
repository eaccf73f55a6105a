package bolt_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/internal/taskrec"
	"github.com/zkpaas/paas/store/bolt"
)

// The damage test makes damaged copies of real store files, of each kind of damage a disk or
// an operator does (a file cut short, a page zeroed, bytes flipped in a page), and checks
// that the store meets every one with a typed error, never a wrong answer, a panic or a fault.
// A fault (SIGBUS, SIGSEGV) kills the process whatever recovers, so the copies are exercised
// in a child process: this test binary, run again with damageChildEnv set.

const (
	damageChildEnv  = "BOLT_TEST_DAMAGE_DIR" // set in the child: its working directory
	damageVariants  = 200                    // of each kind
	damageSeed      = 20260101
	damageDoneMark  = "damage exercise done"
	damageCountMark = "DAMAGE"
)

func TestDamagedFilesFailTyped(t *testing.T) {
	if dir := os.Getenv(damageChildEnv); dir != "" {
		damageChild(t, dir)
		t.Log(damageDoneMark)
		return
	}
	dir := t.TempDir()
	// The child's own timeout turns a hang into a failure that names the variant.
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestDamagedFilesFailTyped$", "-test.v", "-test.count=1", "-test.timeout=3m")
	cmd.Env = append(os.Environ(), damageChildEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		current, _ := os.ReadFile(filepath.Join(dir, "current"))
		t.Fatalf("the child failed (%v) at variant %q:\n%s", err, current, tail(out, 60))
	}
	require.Contains(t, string(out), damageDoneMark, "the child did not run the exercise:\n%s", out)
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if _, line, ok := strings.Cut(sc.Text(), damageCountMark+" "); ok {
			t.Log(line)
		}
	}
}

func tail(out []byte, lines int) string {
	l := strings.Split(string(out), "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}

// damageBase is a healthy store file and what it holds, read back through the store.
type damageBase struct {
	path       string
	tasks      map[paas.TaskID]paas.TaskRecord
	unfinished []paas.TaskRecord
	proofs     map[paas.TaskID]paas.Proof
	gone       []paas.TaskID // ids of tasks pruned, and ids never used: not stored
}

var damageT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// buildDamageBase writes a store of n tasks in every state, with proofs for the completed
// ones (a few of them large, over several pages), some proofs deleted, and the oldest
// finished tasks pruned, so that the file has gaps in its index and free pages.
func buildDamageBase(t *testing.T, path string, n int, rng *rand.Rand) *damageBase {
	ctx := t.Context()
	s, err := bolt.Open(path, fast)
	require.NoError(t, err)
	states := []paas.TaskState{paas.Pending, paas.InProgress, paas.Retrying, paas.Completed, paas.Completed, paas.Failed, paas.Cancelled}
	var writes []paas.Write
	var recs []paas.TaskRecord
	for i := range n {
		program := make([]byte, 10+rng.IntN(400))
		for j := range program {
			program[j] = byte('a' + rng.IntN(26))
		}
		rec := taskrec.New("damage", program, paas.BackendNative, damageT0.Add(time.Duration(i)*time.Minute))
		rec.ID = seededID(rng, i)
		writes = append(writes, paas.Write{Insert: true, Record: rec})
		rec.State = states[rng.IntN(len(states))]
		rec.Attempts = rng.IntN(3)
		recs = append(recs, rec)
	}
	for i := 0; i < len(writes); i += 50 {
		for _, r := range s.WriteBatch(ctx, writes[i:min(i+50, len(writes))]) {
			require.NoError(t, r.Err)
		}
	}
	for _, rec := range recs {
		if rec.State != paas.Pending {
			require.NoError(t, s.Update(ctx, rec))
		}
		if rec.State == paas.Completed {
			receipt := make([]byte, 20+rng.IntN(300))
			if rng.IntN(25) == 0 {
				receipt = make([]byte, 5000+rng.IntN(8000))
			}
			for j := range receipt {
				receipt[j] = byte(rng.Uint32())
			}
			proof := paas.Proof{Backend: paas.BackendNative, Receipt: receipt, PublicValues: []byte(fmt.Sprint(rng.IntN(1000)))}
			require.NoError(t, s.StoreProof(ctx, rec.ID, proof))
			if rng.IntN(10) == 0 {
				require.NoError(t, s.DeleteProof(ctx, rec.ID))
			}
		}
	}
	_, err = s.Prune(ctx, damageT0.Add(time.Duration(n/5)*time.Minute))
	require.NoError(t, err)

	b := &damageBase{path: path, tasks: map[paas.TaskID]paas.TaskRecord{}, proofs: map[paas.TaskID]paas.Proof{}}
	for _, rec := range recs {
		got, err := s.Get(ctx, rec.ID)
		if errors.Is(err, paas.ErrTaskNotFound) {
			b.gone = append(b.gone, rec.ID)
		} else {
			require.NoError(t, err)
			b.tasks[rec.ID] = got
		}
		p, err := s.Proof(ctx, rec.ID) // Prune keeps the proofs of the tasks it deletes
		if errors.Is(err, paas.ErrProofNotFound) {
			continue
		}
		require.NoError(t, err)
		b.proofs[rec.ID] = p
	}
	for i := range 20 {
		b.gone = append(b.gone, seededID(rng, n+i))
	}
	b.unfinished, err = s.Unfinished(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, bolt.Check(path), "the healthy file must check sound")
	require.NotEmpty(t, b.proofs)
	require.NotEmpty(t, b.unfinished)
	return b
}

// seededID returns a task id, the i-th of a run, ordered by i as UUIDv7 ids are by time.
func seededID(rng *rand.Rand, i int) paas.TaskID {
	var id paas.TaskID
	binary.BigEndian.PutUint64(id[:], uint64(i+1)<<16)
	binary.BigEndian.PutUint64(id[8:], rng.Uint64())
	return id
}

// damageKinds damage the copy of a file at path, of size bytes in pages of pageSize.
var damageKinds = []struct {
	name   string
	damage func(t *testing.T, path string, size int64, rng *rand.Rand) string
}{
	{"truncated", func(t *testing.T, path string, size int64, rng *rand.Rand) string {
		at := 1 + rng.Int64N(size-1)
		require.NoError(t, os.Truncate(path, at))
		return fmt.Sprintf("cut at %d of %d", at, size)
	}},
	{"page zeroed", func(t *testing.T, path string, size int64, rng *rand.Rand) string {
		pg := rng.Int64N(size / damagePageSize)
		rewrite(t, path, func(b []byte) { clear(b[pg*damagePageSize : (pg+1)*damagePageSize]) })
		return fmt.Sprintf("page %d zeroed", pg)
	}},
	{"bytes flipped", func(t *testing.T, path string, size int64, rng *rand.Rand) string {
		pg := rng.Int64N(size / damagePageSize)
		n := 1 + rng.IntN(8)
		var at []int64
		rewrite(t, path, func(b []byte) {
			for range n {
				off := pg*damagePageSize + rng.Int64N(damagePageSize)
				b[off] ^= byte(1 + rng.IntN(255))
				at = append(at, off)
			}
		})
		return fmt.Sprintf("page %d, bytes %v flipped", pg, at)
	}},
}

const damagePageSize = 4096

func rewrite(t *testing.T, path string, fn func(b []byte)) {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	fn(b)
	require.NoError(t, os.WriteFile(path, b, 0o600))
}

// damageOutcome is what the store made of one damaged copy.
type damageOutcome string

const (
	clean       damageOutcome = "clean"         // no error, and every read right: the damage hit unused bytes
	atOpen      damageOutcome = "at Open"       // Open failed with a damage error
	atRead      damageOutcome = "at a read"     // a read or Prune failed with one
	atCheckOnly damageOutcome = "by Check only" // no read met it, Check found it
)

func damageChild(t *testing.T, dir string) {
	if os.Getpagesize() != damagePageSize {
		t.Skipf("pages of %d bytes, not %d", os.Getpagesize(), damagePageSize)
	}
	rng := rand.New(rand.NewPCG(damageSeed, 0))
	bases := []*damageBase{
		buildDamageBase(t, filepath.Join(dir, "big.db"), 300, rng),
		buildDamageBase(t, filepath.Join(dir, "small.db"), 40, rng),
	}
	var failures []string
	for _, kind := range damageKinds {
		counts := map[damageOutcome]int{}
		for i := range damageVariants {
			base := bases[i%len(bases)]
			path := filepath.Join(dir, "damaged.db")
			raw, err := os.ReadFile(base.path)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(path, raw, 0o600))
			what := kind.damage(t, path, int64(len(raw)), rng)
			variant := fmt.Sprintf("%s #%d of %s: %s", kind.name, i, filepath.Base(base.path), what)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "current"), []byte(variant), 0o600))
			outcome, problems := exerciseDamaged(t.Context(), path, base)
			for _, p := range problems {
				failures = append(failures, variant+": "+p)
			}
			counts[outcome]++
		}
		t.Logf("%s %-13s %d variants: clean %d, detected at Open %d, at a read %d, by Check only %d",
			damageCountMark, kind.name, damageVariants, counts[clean], counts[atOpen], counts[atRead], counts[atCheckOnly])
	}
	require.Empty(t, failures, "%d failures, the first: %s", len(failures), strings.Join(failures[:min(len(failures), 20)], "\n"))
}

// exerciseDamaged opens the damaged copy at path of base, reads everything base holds, prunes
// and checks it. It returns how the damage was met, and what went wrong: a panic, an error
// that is not a typed damage error naming the file, or a wrong answer.
func exerciseDamaged(ctx context.Context, path string, base *damageBase) (outcome damageOutcome, problems []string) {
	defer func() {
		if r := recover(); r != nil {
			problems = append(problems, fmt.Sprintf("panic: %v", r))
		}
	}()
	problem := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	detected := false
	// met reports whether err is damage, reported as it must be; any other error is a problem.
	met := func(what string, err error) bool {
		var d *bolt.DamagedFileError
		switch {
		case err == nil:
			return false
		case !errors.As(err, &d):
			problem("%s: an error that is not a *DamagedFileError: %v", what, err)
		case !strings.HasPrefix(err.Error(), "bolt: ") || !strings.Contains(err.Error(), path):
			problem("%s: the error must begin with \"bolt: \" and name the file: %v", what, err)
		case len(d.Problems) == 0:
			problem("%s: a *DamagedFileError without problems", what)
		}
		detected = true
		return true
	}
	checkAgrees := func() {
		err := bolt.Check(path)
		if !met("Check", err) && detected {
			problem("Check finds the file sound, though the store met damage")
		}
	}

	s, err := bolt.Open(path, &bolt.Options{NoSync: true, LockTimeout: 5 * time.Second})
	if met("Open", err) {
		checkAgrees()
		return atOpen, problems
	}
	if err != nil {
		return atOpen, problems
	}
	closed := false
	defer func() {
		if !closed {
			_ = s.Close()
		}
	}()

	if recs, err := s.Unfinished(ctx); !met("Unfinished", err) && !reflect.DeepEqual(recs, base.unfinished) {
		problem("Unfinished returned %d tasks, not the %d stored, without an error", len(recs), len(base.unfinished))
	}
	for id, want := range base.tasks {
		got, err := s.Get(ctx, id)
		switch {
		case errors.Is(err, paas.ErrTaskNotFound) && !detected:
			problem("Get of stored task %s: not found, without a damage error: %v", id, err)
		case met("Get "+id.String(), err):
		case err == nil && !reflect.DeepEqual(got, want):
			problem("Get of task %s: a wrong record without an error", id)
		}
		got, err = s.GetByKey(ctx, want.Key)
		switch {
		case errors.Is(err, paas.ErrTaskNotFound) && !detected:
			problem("GetByKey of stored task %s: not found, without a damage error: %v", id, err)
		case met("GetByKey "+id.String(), err):
		case err == nil && !reflect.DeepEqual(got, want):
			problem("GetByKey of task %s: a wrong record without an error", id)
		}
		// The key lookup: an Insert of a stored task's record finds it by its key.
		again := want
		again.ID = paas.NewTaskID()
		got, err = s.Insert(ctx, again)
		switch {
		case met("Insert of the key of "+id.String(), err):
		case err != nil:
			problem("Insert of the key of %s: %v", id, err)
		case got.ID != id:
			problem("Insert of the key of %s: a new task %s, as if the key were not stored", id, got.ID)
		}
	}
	for _, id := range base.gone {
		if _, err := s.Get(ctx, id); !errors.Is(err, paas.ErrTaskNotFound) && !met("Get of unstored "+id.String(), err) {
			problem("Get of task %s, which is not stored: %v", id, err)
		}
	}
	for _, id := range append(slices.Collect(maps.Keys(base.tasks)), base.gone...) {
		got, err := s.Proof(ctx, id)
		want, stored := base.proofs[id]
		switch {
		case errors.Is(err, paas.ErrProofNotFound) && stored && !detected:
			problem("Proof of task %s: not found, without a damage error", id)
		case errors.Is(err, paas.ErrProofNotFound) && !stored:
		case met("Proof of "+id.String(), err):
		case err != nil:
			problem("Proof of task %s: %v", id, err)
		case !stored:
			problem("Proof of task %s: a proof, though none is stored", id)
		case !reflect.DeepEqual(got, want):
			problem("Proof of task %s: a wrong proof without an error", id)
		}
	}
	_, err = s.Prune(ctx, damageT0.Add(time.Duration(len(base.tasks)/2)*time.Minute))
	met("Prune", err)
	readDetected := detected
	closed = true
	if err := s.Close(); err != nil {
		problem("Close: %v", err)
	}
	checkAgrees()
	switch {
	case readDetected:
		return atRead, problems
	case detected:
		return atCheckOnly, problems
	}
	return clean, problems
}

// The healthy files of the damage test check sound, and a damaged copy fails Check listing
// its problems; Check must not report a sound file damaged, nor miss what Open sees.
func TestCheckHealthyAndDamaged(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	base := buildDamageBase(t, filepath.Join(t.TempDir(), "tasks.db"), 60, rng)
	require.NoError(t, bolt.Check(base.path))

	rewrite(t, base.path, func(b []byte) { clear(b[2*damagePageSize : 3*damagePageSize]) })
	err := bolt.Check(base.path)
	var d *bolt.DamagedFileError
	require.ErrorAs(t, err, &d)
	require.Equal(t, base.path, d.Path)
	require.NotEmpty(t, d.Problems)
	_, err = bolt.Open(base.path, fast)
	require.ErrorAs(t, err, &d)
	require.ErrorContains(t, err, base.path)

	empty := filepath.Join(t.TempDir(), "empty.db")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	require.ErrorAs(t, bolt.Check(empty), &d, "an empty file has lost whatever it held")
	require.ErrorIs(t, bolt.Check(filepath.Join(t.TempDir(), "missing.db")), os.ErrNotExist)
}

// Check fails with ErrLocked while a Store has the file open, and never waits for ever.
func TestCheckLockedFile(t *testing.T) {
	path := tempPath(t)
	openT(t, path, fast)
	err := bolt.Check(path)
	require.ErrorIs(t, err, bolt.ErrLocked)
}

// A proof whose key is damaged would read as not found, like one never stored; the digest of
// the proofs' keys makes Open fail instead.
func TestDamagedProofKeyFailsOpen(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	s, err := bolt.Open(path, fast)
	require.NoError(t, err)
	id := paas.NewTaskID()
	require.NoError(t, s.StoreProof(ctx, id, paas.Proof{Backend: paas.BackendNative, Receipt: []byte("receipt")}))
	require.NoError(t, s.Close())

	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	// Every copy of the key, in the page in use and in free pages that held it before: flip
	// its last byte, which keeps the order of keys.
	found := 0
	for at := 0; ; at++ {
		i := bytes.Index(raw[at:], id[:])
		if i < 0 {
			break
		}
		at += i
		raw[at+15] ^= 0x01
		found++
	}
	require.Positive(t, found)
	require.NoError(t, os.WriteFile(path, raw, 0o600))

	_, err = bolt.Open(path, fast)
	var d *bolt.DamagedFileError
	require.ErrorAs(t, err, &d)
	require.ErrorContains(t, err, "proofs bucket")
}
